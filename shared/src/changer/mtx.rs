//! Placeholder: the mtx changer (being built).
