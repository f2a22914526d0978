//! Numerics: a compiled expression IR with reverse-mode differentiation.
