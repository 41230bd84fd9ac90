"""The MONAI Label REST API over voxelprompt's models: task entries (:mod:`.tasks`), replies
(:mod:`.replies`) and routes (:mod:`.routes`)."""
