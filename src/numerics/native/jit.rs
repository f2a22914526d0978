//! The Cranelift JIT around the code generator: the host's instruction set, the shims
//! registered as symbols, the two kernels of a plan compiled and finalised into executable
//! memory, and that memory freed with them.

use super::super::compile::Plan;
use super::codegen;
use super::shims::Function;
use super::Unsupported;
use cranelift_codegen::ir::{types, AbiParam, Signature, UserFuncName};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, Linkage, Module};

/// A generated kernel: `(count, x, input_offsets, data, values, gradient)` as
/// [`codegen::PARAMS`] describes them.
pub(super) type KernelFn =
    unsafe extern "C" fn(usize, *const f64, *const usize, *const f64, *mut f64, *mut f64);

/// The executable code of one plan's kernels, which owns its memory.
pub(super) struct Code {
    /// Kept to free the code's memory on drop; not used otherwise.
    module: Option<JITModule>,
    /// Value and gradient.
    pub(super) value_and_gradient: KernelFn,
    /// Value only.
    pub(super) value: KernelFn,
}

// SAFETY: after `finalize_definitions` the module is never read or changed again: the code
// is immutable machine code that any thread may run (the kernels touch only the memory
// their arguments point to), and the module is only freed, by `Drop`, which has the sole
// reference.
unsafe impl Send for Code {}
// SAFETY: as for `Send`: shared references only call the finished code.
unsafe impl Sync for Code {}

impl Drop for Code {
    fn drop(&mut self) {
        if let Some(module) = self.module.take() {
            // SAFETY: the function pointers into this memory are fields of `self`, which is
            // being dropped, and are never copied out of it (`NativeKernel` calls them
            // through `&self`).
            unsafe { module.free_memory() };
        }
    }
}

/// The host's instruction set with the flags the kernels need (optimised for speed, plain
/// absolute calls to the shims), or why there is none.
fn host_isa() -> Result<cranelift_codegen::isa::OwnedTargetIsa, Unsupported> {
    if !cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
        return Err(Unsupported::Platform(format!(
            "no native kernels for {} (x86_64 and aarch64 only)",
            std::env::consts::ARCH
        )));
    }
    let mut flags = settings::builder();
    let set = |flags: &mut settings::Builder, name: &str, value: &str| {
        flags
            .set(name, value)
            .map_err(|e| Unsupported::Platform(format!("Cranelift flag {name}: {e}")))
    };
    set(&mut flags, "opt_level", "speed")?;
    set(&mut flags, "use_colocated_libcalls", "false")?;
    set(&mut flags, "is_pic", "false")?;
    let isa = cranelift_native::builder()
        .map_err(|e| Unsupported::Platform(format!("no JIT for this machine: {e}")))?;
    isa.finish(settings::Flags::new(flags))
        .map_err(|e| Unsupported::Platform(format!("no JIT for this machine: {e}")))
}

/// Compiles the value-and-gradient and the value-only kernels of `plan`.
pub(super) fn compile(plan: &Plan) -> Result<Code, Unsupported> {
    codegen::check(plan)?;
    let isa = host_isa()?;
    let mut builder = JITBuilder::with_isa(isa, cranelift_module::default_libcall_names());
    for function in Function::ALL {
        let shim = function.shim();
        builder.symbol(shim.name, shim.address);
    }
    let mut module = JITModule::new(builder);
    let result = define_kernels(&mut module, plan);
    match result {
        Ok((both, value)) => {
            module
                .finalize_definitions()
                .map_err(|e| Unsupported::Codegen(e.to_string()))?;
            let pointer = |id| module.get_finalized_function(id);
            // SAFETY: both functions were defined with the signature of `KernelFn` (six
            // pointer-sized integer parameters, no result, the platform's C convention).
            let (value_and_gradient, value) = unsafe {
                (
                    std::mem::transmute::<*const u8, KernelFn>(pointer(both)),
                    std::mem::transmute::<*const u8, KernelFn>(pointer(value)),
                )
            };
            Ok(Code {
                module: Some(module),
                value_and_gradient,
                value,
            })
        }
        Err(reason) => {
            // SAFETY: nothing was finalised, so no pointer into the module's memory exists.
            unsafe { module.free_memory() };
            Err(reason)
        }
    }
}

/// Declares the shims and defines both kernels in `module`.
fn define_kernels(module: &mut JITModule, plan: &Plan) -> Result<(FuncId, FuncId), Unsupported> {
    let codegen_error = |e: cranelift_module::ModuleError| Unsupported::Codegen(e.to_string());
    let call_conv = module.isa().default_call_conv();
    let mut shim_ids = Vec::with_capacity(Function::ALL.len());
    for function in Function::ALL {
        let shim = function.shim();
        let mut signature = Signature::new(call_conv);
        for _ in 0..shim.floats {
            signature.params.push(AbiParam::new(types::F64));
        }
        if shim.int_exponent {
            signature.params.push(AbiParam::new(types::I32));
        }
        signature.returns.push(AbiParam::new(types::F64));
        let id = module
            .declare_function(shim.name, Linkage::Import, &signature)
            .map_err(codegen_error)?;
        shim_ids.push(id);
    }
    let mut kernel_signature = Signature::new(call_conv);
    for _ in 0..codegen::PARAMS {
        kernel_signature.params.push(AbiParam::new(types::I64));
    }
    let mut context = module.make_context();
    let mut builder_context = FunctionBuilderContext::new();
    let mut ids = [None, None];
    for (n, (name, backward)) in [("value_and_gradient", true), ("value", false)]
        .into_iter()
        .enumerate()
    {
        let id = module
            .declare_function(name, Linkage::Local, &kernel_signature)
            .map_err(codegen_error)?;
        context.func.signature = kernel_signature.clone();
        context.func.name = UserFuncName::user(0, id.as_u32());
        {
            let mut b = FunctionBuilder::new(&mut context.func, &mut builder_context);
            let shims: Vec<_> = shim_ids
                .iter()
                .map(|&shim| module.declare_func_in_func(shim, b.func))
                .collect();
            codegen::emit(&mut b, plan, &shims, backward)?;
            b.finalize();
        }
        module
            .define_function(id, &mut context)
            .map_err(|e| Unsupported::Codegen(format!("{e:?}")))?;

        module.clear_context(&mut context);
        ids[n] = Some(id);
    }
    Ok((
        ids[0].expect("defined above"),
        ids[1].expect("defined above"),
    ))
}
