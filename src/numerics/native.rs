//! Native box kernels: a batchable objective's plan compiled to machine code (Cranelift),
//! computing value and gradient for a run of boxes in one loop with values in registers,
//! two boxes per iteration in SIMD lanes.
//!
//! The interpreter (`batch.rs`) stays the reference and the fallback: a native kernel
//! has the same contract and gives the same bits (same operations in the same order, no
//! fused multiply-add, library functions through the interpreter's own Rust functions),
//! and a plan the code generator does not support, or a machine without a JIT, keeps the
//! interpreter with a [`KernelNote`] saying why.
//!
//! ```
//! use catopt::numerics::{BinaryOp, ExprBuilder, KernelChoice, Shape};
//! let mut builder = ExprBuilder::new(2);
//! let a = builder.input(0, Shape::Scalar);
//! let b = builder.input(1, Shape::Scalar);
//! let f = builder.binary(BinaryOp::Mul, a, b).unwrap();
//! let objective = builder.compile(f).unwrap();
//! let (native, note) = objective.with_kernels(KernelChoice::Native);
//! println!("{note}");
//! let mut ws = native.batch_workspace(3);
//! let (mut values, mut gradient) = ([0.0; 3], [0.0; 6]);
//! native.batch_value_and_gradient(&mut ws, 3, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &mut values, &mut gradient);
//! assert_eq!(values, [4.0, 10.0, 18.0]);
//! assert_eq!(gradient, [4.0, 5.0, 6.0, 1.0, 2.0, 3.0]);
//! ```

mod codegen;
mod jit;
mod shims;

use super::compile::CompiledObjective;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Which code evaluates batched boxes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KernelChoice {
    /// The interpreter: one vectorised loop per plan step over tile buffers.
    #[default]
    Interpreted,
    /// Machine code generated per box type, with the interpreter as the fallback.
    Native,
}

impl KernelChoice {
    /// The environment variable [`from_env`](Self::from_env) reads.
    pub const ENV: &'static str = "CATOPT_KERNELS";

    /// The choice named by `CATOPT_KERNELS` (`interpreted` or `native`); the interpreter
    /// when it is unset or names neither.
    pub fn from_env() -> Self {
        match std::env::var(Self::ENV).as_deref() {
            Ok("native") => KernelChoice::Native,
            _ => KernelChoice::Interpreted,
        }
    }

    /// The choice's name, as `CATOPT_KERNELS` spells it.
    pub fn name(self) -> &'static str {
        match self {
            KernelChoice::Interpreted => "interpreted",
            KernelChoice::Native => "native",
        }
    }
}

/// Why a plan keeps the interpreter although native kernels were asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unsupported {
    /// The objective has vector or matrix nodes (no batched kernel at all).
    NotScalar,
    /// The value is an input, a constant or data, not a computed step.
    OutputNotComputed,
    /// A step kind the generator does not lower.
    Step,
    /// A step reads the output's value.
    OutputRead,
    /// The plan's adjoint order is not one the generator reproduces.
    AdjointOrder,
    /// More steps than code generation is allowed to take on (its time grows faster).
    TooLarge {
        /// The objective's steps.
        steps: usize,
        /// The most the generator takes.
        limit: usize,
    },
    /// This machine has no JIT.
    Platform(String),
    /// Cranelift refused the generated code.
    Codegen(String),
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unsupported::NotScalar => write!(f, "the objective has vector or matrix values"),
            Unsupported::OutputNotComputed => write!(f, "the objective computes nothing"),
            Unsupported::Step => write!(f, "a step the code generator does not support"),
            Unsupported::OutputRead => write!(f, "a step reads the objective's value"),
            Unsupported::AdjointOrder => write!(f, "an adjoint order it does not reproduce"),
            Unsupported::TooLarge { steps, limit } => write!(
                f,
                "{steps} steps, more than the {limit} code generation takes on"
            ),
            Unsupported::Platform(reason) | Unsupported::Codegen(reason) => f.write_str(reason),
        }
    }
}

/// What [`CompiledObjective::with_kernels`] did, for `catopt explain` and the JSON.
#[derive(Clone, Debug, PartialEq)]
pub enum KernelNote {
    /// The interpreter was asked for.
    Interpreted,
    /// Native code was generated in this time.
    Native {
        /// Time to generate and finalise both kernels.
        codegen: Duration,
    },
    /// Native code was asked for but the interpreter runs, for this reason.
    Fallback(Unsupported),
}

impl KernelNote {
    /// True when the platform (not the objective) stopped native code: worth a warning.
    pub fn is_platform_fallback(&self) -> bool {
        matches!(self, KernelNote::Fallback(Unsupported::Platform(_)))
    }
}

impl fmt::Display for KernelNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelNote::Interpreted => write!(f, "interpreted"),
            KernelNote::Native { codegen } => {
                write!(
                    f,
                    "native (generated in {:.2} ms)",
                    codegen.as_secs_f64() * 1e3
                )
            }
            KernelNote::Fallback(reason) => write!(f, "interpreted (native: {reason})"),
        }
    }
}

/// The machine code of one objective's batched kernels.
pub struct NativeKernel {
    code: jit::Code,
    codegen: Duration,
}

impl fmt::Debug for NativeKernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NativeKernel")
            .field("codegen", &self.codegen)
            .finish_non_exhaustive()
    }
}

impl NativeKernel {
    /// Generates the kernels of a batchable objective.
    fn compile(objective: &CompiledObjective) -> Result<Self, Unsupported> {
        let start = Instant::now();
        let code = jit::compile(&objective.plan)?;
        Ok(NativeKernel {
            code,
            codegen: start.elapsed(),
        })
    }

    /// Runs the kernel on `count` boxes: inputs at `x[input_offsets[i] + k]`, data at
    /// `data[j * count + k]`, values to `values[k]`, the gradient (when given) to
    /// `gradient[i * count + k]`.
    ///
    /// # Safety
    /// The lengths hold as `batch_at` asserts them: one offset per input with
    /// `input_offsets[i] + count <= x.len()`, `data.len() == data_len * count`,
    /// `values.len() == count`, `gradient.len() == num_inputs * count`.
    pub(crate) unsafe fn run(
        &self,
        count: usize,
        x: &[f64],
        input_offsets: &[usize],
        data: &[f64],
        values: &mut [f64],
        gradient: Option<&mut [f64]>,
    ) {
        let (kernel, gradient) = match gradient {
            Some(gradient) => (self.code.value_and_gradient, gradient.as_mut_ptr()),
            None => (self.code.value, std::ptr::null_mut()),
        };
        // SAFETY: the kernel reads and writes exactly the entries the caller's lengths
        // guarantee (the contract above), through pointers of distinct allocations.
        unsafe {
            kernel(
                count,
                x.as_ptr(),
                input_offsets.as_ptr(),
                data.as_ptr(),
                values.as_mut_ptr(),
                gradient,
            )
        }
    }
}

impl CompiledObjective {
    /// This objective with the batched kernels `choice` asks for: native code generated
    /// now (a fallback to the interpreter when the objective or the machine does not allow
    /// it), or the interpreter. Same results either way, bit for bit; the note says which
    /// runs and how long code generation took.
    pub fn with_kernels(&self, choice: KernelChoice) -> (CompiledObjective, KernelNote) {
        let plain = CompiledObjective {
            plan: Arc::clone(&self.plan),
            native: None,
        };
        match choice {
            KernelChoice::Interpreted => (plain, KernelNote::Interpreted),
            KernelChoice::Native => match NativeKernel::compile(self) {
                Ok(kernel) => {
                    let note = KernelNote::Native {
                        codegen: kernel.codegen,
                    };
                    let native = CompiledObjective {
                        plan: plain.plan,
                        native: Some(Arc::new(kernel)),
                    };
                    (native, note)
                }
                Err(reason) => (plain, KernelNote::Fallback(reason)),
            },
        }
    }

    /// Whether batched evaluation runs native code.
    pub fn is_native(&self) -> bool {
        self.native.is_some()
    }
}
