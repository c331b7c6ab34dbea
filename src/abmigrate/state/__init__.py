"""The state of a database against its history: replays on scratch databases, drift, diagnosis and capture of hand-made changes."""
