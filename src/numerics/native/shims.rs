//! The functions native kernels call: the interpreter's own scalar formulas behind the C
//! calling convention, so that a native kernel gets their bits exactly (no inlined
//! approximation of its own).

use super::super::kernels;

/// One function the generated code may call, by the name it is registered under.
pub(super) struct Shim {
    /// The symbol the generated code imports.
    pub(super) name: &'static str,
    /// Its address.
    pub(super) address: *const u8,
    /// How many `f64` arguments it takes (then one `i32` for [`powi`]).
    pub(super) floats: usize,
    /// Whether its last argument is an `i32` exponent.
    pub(super) int_exponent: bool,
}

extern "C" fn exp(a: f64) -> f64 {
    a.exp()
}

extern "C" fn ln(a: f64) -> f64 {
    a.ln()
}

extern "C" fn sin(a: f64) -> f64 {
    a.sin()
}

extern "C" fn cos(a: f64) -> f64 {
    a.cos()
}

extern "C" fn tanh(a: f64) -> f64 {
    kernels::tanh(a)
}

extern "C" fn sigmoid(a: f64) -> f64 {
    kernels::sigmoid(a)
}

extern "C" fn softplus(a: f64) -> f64 {
    kernels::softplus(a)
}

extern "C" fn powi(a: f64, n: i32) -> f64 {
    a.powi(n)
}

extern "C" fn powf(a: f64, b: f64) -> f64 {
    a.powf(b)
}

/// Which shim a call goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Function {
    Exp,
    Ln,
    Sin,
    Cos,
    Tanh,
    Sigmoid,
    Softplus,
    Powi,
    Powf,
}

impl Function {
    /// Every shim, in a fixed order (the index is the function's position).
    pub(super) const ALL: [Function; 9] = [
        Function::Exp,
        Function::Ln,
        Function::Sin,
        Function::Cos,
        Function::Tanh,
        Function::Sigmoid,
        Function::Softplus,
        Function::Powi,
        Function::Powf,
    ];

    /// The function's name, address and arguments.
    pub(super) fn shim(self) -> Shim {
        let unary = |name, f: extern "C" fn(f64) -> f64| Shim {
            name,
            address: f as *const u8,
            floats: 1,
            int_exponent: false,
        };
        match self {
            Function::Exp => unary("catopt_exp", exp),
            Function::Ln => unary("catopt_ln", ln),
            Function::Sin => unary("catopt_sin", sin),
            Function::Cos => unary("catopt_cos", cos),
            Function::Tanh => unary("catopt_tanh", tanh),
            Function::Sigmoid => unary("catopt_sigmoid", sigmoid),
            Function::Softplus => unary("catopt_softplus", softplus),
            Function::Powi => Shim {
                name: "catopt_powi",
                address: powi as extern "C" fn(f64, i32) -> f64 as *const u8,
                floats: 1,
                int_exponent: true,
            },
            Function::Powf => Shim {
                name: "catopt_powf",
                address: powf as extern "C" fn(f64, f64) -> f64 as *const u8,
                floats: 2,
                int_exponent: false,
            },
        }
    }

    /// The position of the function in [`ALL`](Self::ALL).
    pub(super) fn index(self) -> usize {
        Function::ALL
            .iter()
            .position(|&f| f == self)
            .expect("every function is listed")
    }
}
