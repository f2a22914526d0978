//! The category core: finite functions, pushouts, wiring diagrams, open objectives, the GD functor.
