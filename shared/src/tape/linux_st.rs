//! Placeholder: the Linux st drive (being built).
