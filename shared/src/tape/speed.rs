//! Placeholder: the drive speed model (being built).
