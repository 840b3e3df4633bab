"""The probe: `client` (torch-free, runs in the editor-side process) talks to `worker` (a
separate process, the only place torch is imported and user code runs)."""
