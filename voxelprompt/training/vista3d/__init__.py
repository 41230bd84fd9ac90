"""Training VISTA3D: MONAI transforms, prompt sampling, the four-stage recipes, the trainer on the
shared loop, validation and few-shot finetuning (see ``../README.md``)."""
