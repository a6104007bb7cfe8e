//! Local Amplitude-compatible server (in progress).
