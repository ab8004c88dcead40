"""Model classes registered into SGLang's ModelRegistry (every module here defines `EntryClass`)."""
