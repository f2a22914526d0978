//! Lowering of a batchable plan (every step scalar) to Cranelift IR: one function that runs
//! the plan forward (and backward) for `count` boxes in one loop, values and adjoints in
//! registers, two boxes per iteration in the lanes of an `f64x2` and the odd box last.
//!
//! Each box gets exactly the operations of the batched interpreter (`batch.rs`), in its
//! order and with its formulas (`kernels.rs`): IEEE basic operations inline (no fused
//! multiply-add), every library function through the interpreter's own Rust function
//! (`shims.rs`), every adjoint written by its first contribution in reverse order and then
//! accumulated, so the bits are the interpreter's.

use super::super::compile::{Loc, Operand, Plan, StepKind};
use super::super::kernels::{Arith, Elementwise, Reduce};
use super::shims::Function;
use super::Unsupported;
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, FuncRef, InstBuilder, MemFlags, Type, Value};
use cranelift_frontend::FunctionBuilder;

/// The parameters of a generated kernel, in order (all pointer-sized):
/// `count`, `x`, `input_offsets`, `data`, `values`, `gradient`. Input `i` of box `k` is
/// `x[input_offsets[i] + k]`, entry `j` of its data `data[j * count + k]`, its value goes
/// to `values[k]` and its gradient to `gradient[i * count + k]` (not read for the value-only
/// kernel).
pub(super) const PARAMS: usize = 6;

/// The most steps a plan may have for native code: generation time grows faster than the
/// number of steps (about 50 ms at this size, 0.7 s at 4000), and an objective this long
/// gains little from it.
pub(super) const MAX_STEPS: usize = 512;

/// Checks that the code generator supports `plan`, before any code is made.
pub(super) fn check(plan: &Plan) -> Result<(), Unsupported> {
    if !plan.batchable {
        return Err(Unsupported::NotScalar);
    }
    if plan.steps.len() > MAX_STEPS {
        return Err(Unsupported::TooLarge {
            steps: plan.steps.len(),
            limit: MAX_STEPS,
        });
    }
    let Loc::Slot(output) = plan.output else {
        return Err(Unsupported::OutputNotComputed);
    };
    for step in &plan.steps {
        if !matches!(
            step.kind,
            StepKind::Unary { .. }
                | StepKind::Binary { .. }
                | StepKind::Reduce { .. }
                | StepKind::Dot { .. }
        ) {
            return Err(Unsupported::Step);
        }
        if step
            .operands()
            .iter()
            .any(|operand| operand.loc == Loc::Slot(output))
        {
            return Err(Unsupported::OutputRead);
        }
    }
    Ok(())
}

/// The pointers of one generated function, loaded once before the loop.
struct Bases {
    /// Per input: the address of box 0's value.
    inputs: Vec<Value>,
    /// Per data entry: the address of box 0's entry.
    data: Vec<Value>,
    values: Value,
    /// Per input: the address of box 0's gradient entry (backward kernels only).
    gradient: Vec<Value>,
}

/// Emits the body of a kernel into `b` (whose entry block has the [`PARAMS`] parameters):
/// the loop over boxes, two per iteration, then the last box alone when `count` is odd.
/// `shims[f.index()]` is the imported [`Function`] `f`.
pub(super) fn emit(
    b: &mut FunctionBuilder,
    plan: &Plan,
    shims: &[FuncRef],
    backward: bool,
) -> Result<(), Unsupported> {
    let pointer = types::I64;
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let params = b.block_params(entry).to_vec();
    let [count, x, offsets, data, values, gradient] = params[..] else {
        unreachable!("the signature has {PARAMS} parameters")
    };
    let flags = MemFlags::trusted();
    let inputs = (0..plan.num_inputs)
        .map(|i| {
            let offset = b.ins().load(pointer, flags, offsets, (i * 8) as i32);
            let bytes = b.ins().ishl_imm(offset, 3);
            b.ins().iadd(x, bytes)
        })
        .collect();
    let entry_base = |base: Value, index: usize, b: &mut FunctionBuilder| {
        let bytes = b.ins().imul_imm(count, (index * 8) as i64);
        b.ins().iadd(base, bytes)
    };
    let data_bases = (0..plan.data_len).map(|j| entry_base(data, j, b)).collect();
    let gradient_bases = if backward {
        (0..plan.num_inputs)
            .map(|i| entry_base(gradient, i, b))
            .collect()
    } else {
        Vec::new()
    };
    let bases = Bases {
        inputs,
        data: data_bases,
        values,
        gradient: gradient_bases,
    };

    // for (k = 0; k + 2 <= count; k += 2) { two boxes }; if (k < count) { one box }
    let pair_head = b.create_block();
    let pair_body = b.create_block();
    let last = b.create_block();
    let last_body = b.create_block();
    let exit = b.create_block();
    b.append_block_param(pair_head, pointer);
    b.append_block_param(pair_body, pointer);
    b.append_block_param(last, pointer);
    b.append_block_param(last_body, pointer);
    let zero = b.ins().iconst(pointer, 0);
    b.ins().jump(pair_head, &[zero]);

    b.switch_to_block(pair_head);
    let k = b.block_params(pair_head)[0];
    let next = b.ins().iadd_imm(k, 2);
    let fits = b.ins().icmp(IntCC::UnsignedLessThanOrEqual, next, count);
    b.ins().brif(fits, pair_body, &[k], last, &[k]);

    b.switch_to_block(pair_body);
    let k = b.block_params(pair_body)[0];
    let bytes = b.ins().ishl_imm(k, 3);
    Lanes {
        b,
        plan,
        shims,
        ty: types::F64X2,
    }
    .one_iteration(&bases, bytes, backward)?;
    let next = b.ins().iadd_imm(k, 2);
    b.ins().jump(pair_head, &[next]);

    b.switch_to_block(last);
    let k = b.block_params(last)[0];
    let left = b.ins().icmp(IntCC::UnsignedLessThan, k, count);
    b.ins().brif(left, last_body, &[k], exit, &[]);

    b.switch_to_block(last_body);
    let k = b.block_params(last_body)[0];
    let bytes = b.ins().ishl_imm(k, 3);
    Lanes {
        b,
        plan,
        shims,
        ty: types::F64,
    }
    .one_iteration(&bases, bytes, backward)?;
    b.ins().jump(exit, &[]);

    b.switch_to_block(exit);
    b.ins().return_(&[]);
    b.seal_all_blocks();
    Ok(())
}

/// The code of one loop iteration over the boxes in the lanes of `ty` (`f64` or `f64x2`).
struct Lanes<'a, 'b> {
    b: &'a mut FunctionBuilder<'b>,
    plan: &'a Plan,
    shims: &'a [FuncRef],
    ty: Type,
}

/// The values of one iteration's forward pass, and where they come from.
struct Forward<'a> {
    bases: &'a Bases,
    /// The iteration's first box, in bytes from box 0.
    bytes: Value,
    flags: MemFlags,
    /// The inputs and data entries loaded so far.
    inputs: Vec<Option<Value>>,
    data: Vec<Option<Value>>,
    /// The steps' values.
    slots: Vec<Option<Value>>,
}

/// Where an adjoint stands during the reverse pass.
#[derive(Clone, Copy)]
enum Adjoint {
    /// No contribution yet.
    Unset,
    /// The gradient entry that no step writes: zeroed by the interpreter before the pass.
    Zeroed,
    Set(Value),
}

impl Lanes<'_, '_> {
    /// Forward (and backward) for the boxes at byte offset `bytes` of every column.
    fn one_iteration(
        &mut self,
        bases: &Bases,
        bytes: Value,
        backward: bool,
    ) -> Result<(), Unsupported> {
        let plan = self.plan;
        let flags = MemFlags::trusted().with_aligned();
        // Vector loads and stores are unaligned (a box's column starts anywhere).
        let flags = if self.ty == types::F64 {
            flags
        } else {
            MemFlags::new().with_notrap()
        };
        let mut state = Forward {
            bases,
            bytes,
            flags,
            inputs: vec![None; plan.num_inputs],
            data: vec![None; plan.data_len],
            slots: vec![None; plan.slot_len],
        };
        let mut reads = Vec::with_capacity(plan.steps.len());
        for step in &plan.steps {
            let (value, operands) = match &step.kind {
                StepKind::Unary { op, arg } => {
                    let a = self.read(&mut state, arg);
                    (self.unary(*op, a), [a, a])
                }
                StepKind::Binary { op, lhs, rhs, .. } => {
                    let (a, c) = (self.read(&mut state, lhs), self.read(&mut state, rhs));
                    (self.arith(*op, a, c), [a, c])
                }
                StepKind::Dot { lhs, rhs } => {
                    let (a, c) = (self.read(&mut state, lhs), self.read(&mut state, rhs));
                    (self.arith(Arith::Mul, a, c), [a, c])
                }
                StepKind::Reduce { op, arg } => {
                    let a = self.read(&mut state, arg);
                    let value = match op {
                        Reduce::SumSq => self.b.ins().fmul(a, a),
                        Reduce::Sum | Reduce::Mean | Reduce::LogSumExp => a,
                    };
                    (value, [a, a])
                }
                _ => return Err(Unsupported::Step),
            };
            state.slots[step.out] = Some(value);
            reads.push(operands);
        }
        let slots = state.slots;
        let Loc::Slot(output) = plan.output else {
            return Err(Unsupported::OutputNotComputed);
        };
        let value = slots[output].expect("the output is computed");
        let address = self.b.ins().iadd(bases.values, bytes);
        self.b.ins().store(flags, value, address, 0);
        if !backward {
            return Ok(());
        }

        // Reverse: the interpreter's order, first contributions written, later ones added.
        let mut adjoints = vec![Adjoint::Unset; plan.slot_len];
        let mut gradient = vec![Adjoint::Unset; plan.num_inputs];
        for range in &plan.zero_ranges {
            for i in range.clone() {
                gradient[i] = Adjoint::Zeroed;
            }
        }
        adjoints[output] = Adjoint::Set(self.constant(1.0));
        for (step, operands) in plan.steps.iter().zip(&reads).rev() {
            let Adjoint::Set(g) = adjoints[step.out] else {
                return Err(Unsupported::AdjointOrder);
            };
            let out = slots[step.out].expect("computed forward");
            match &step.kind {
                StepKind::Unary { op, arg } => {
                    if has_sink(arg) {
                        let c = self.unary_vjp(*op, operands[0], out, g);
                        self.contribute(arg, c, &mut adjoints, &mut gradient)?;
                    }
                }
                StepKind::Binary { op, lhs, rhs, .. } => {
                    let (a, c) = (operands[0], operands[1]);
                    if has_sink(lhs) {
                        let d = self.arith_vjp(*op, true, a, c, out, g);
                        self.contribute(lhs, d, &mut adjoints, &mut gradient)?;
                    }
                    if has_sink(rhs) {
                        let d = self.arith_vjp(*op, false, a, c, out, g);
                        self.contribute(rhs, d, &mut adjoints, &mut gradient)?;
                    }
                }
                StepKind::Dot { lhs, rhs } => {
                    let (a, c) = (operands[0], operands[1]);
                    if has_sink(lhs) {
                        let d = self.arith_vjp(Arith::Mul, true, a, c, out, g);
                        self.contribute(lhs, d, &mut adjoints, &mut gradient)?;
                    }
                    if has_sink(rhs) {
                        let d = self.arith_vjp(Arith::Mul, false, a, c, out, g);
                        self.contribute(rhs, d, &mut adjoints, &mut gradient)?;
                    }
                }
                StepKind::Reduce { op, arg } => {
                    if has_sink(arg) {
                        let a = operands[0];
                        let c = match op {
                            Reduce::Sum => g,
                            Reduce::Mean => {
                                let one = self.constant(1.0);
                                self.b.ins().fdiv(g, one)
                            }
                            Reduce::SumSq => {
                                let two = self.constant(2.0);
                                let twice = self.b.ins().fmul(two, a);
                                self.b.ins().fmul(g, twice)
                            }
                            Reduce::LogSumExp => {
                                let shifted = self.b.ins().fsub(a, out);
                                let e = self.call(Function::Exp, &[shifted]);
                                self.b.ins().fmul(g, e)
                            }
                        };
                        self.contribute(arg, c, &mut adjoints, &mut gradient)?;
                    }
                }
                _ => return Err(Unsupported::Step),
            }
        }
        for (i, entry) in gradient.iter().enumerate() {
            let value = match *entry {
                Adjoint::Set(value) => value,
                Adjoint::Zeroed => self.constant(0.0),
                Adjoint::Unset => return Err(Unsupported::AdjointOrder),
            };
            let address = self.b.ins().iadd(bases.gradient[i], bytes);
            self.b.ins().store(flags, value, address, 0);
        }
        Ok(())
    }

    /// The value of an operand: a slot computed before, an input or data entry loaded once
    /// per iteration, or a constant.
    fn read(&mut self, state: &mut Forward, operand: &Operand) -> Value {
        let (ty, flags, bytes) = (self.ty, state.flags, state.bytes);
        let mut load = |cache: &mut Option<Value>, base: Value| {
            *cache.get_or_insert_with(|| {
                let address = self.b.ins().iadd(base, bytes);
                self.b.ins().load(ty, flags, address, 0)
            })
        };
        match operand.loc {
            Loc::Slot(slot) => state.slots[slot].expect("a step's operands come before it"),
            Loc::Input(i) => load(&mut state.inputs[i], state.bases.inputs[i]),
            Loc::Data(j) => load(&mut state.data[j], state.bases.data[j]),
            Loc::Const(offset) => self.constant(self.plan.consts[offset]),
        }
    }

    /// Adds (or writes, for the first contribution) `c` to the operand's adjoint, as the
    /// interpreter's `accumulate` flag says.
    fn contribute(
        &mut self,
        operand: &Operand,
        c: Value,
        adjoints: &mut [Adjoint],
        gradient: &mut [Adjoint],
    ) -> Result<(), Unsupported> {
        let entry = match operand.loc {
            Loc::Slot(slot) => &mut adjoints[slot],
            Loc::Input(i) => &mut gradient[i],
            Loc::Const(_) | Loc::Data(_) => return Ok(()),
        };
        *entry = match (*entry, operand.accumulate) {
            (_, false) => Adjoint::Set(c),
            (Adjoint::Set(previous), true) => Adjoint::Set(self.b.ins().fadd(previous, c)),
            (Adjoint::Zeroed, true) => {
                let zero = self.constant(0.0);
                Adjoint::Set(self.b.ins().fadd(zero, c))
            }
            (Adjoint::Unset, true) => return Err(Unsupported::AdjointOrder),
        };
        Ok(())
    }

    /// `x` in every lane.
    fn constant(&mut self, x: f64) -> Value {
        let scalar = self.b.ins().f64const(x);
        if self.ty == types::F64 {
            scalar
        } else {
            self.b.ins().splat(self.ty, scalar)
        }
    }

    /// Calls a shim, lane by lane.
    fn call(&mut self, function: Function, args: &[Value]) -> Value {
        let callee = self.shims[function.index()];
        let call_lane = |b: &mut FunctionBuilder, args: &[Value]| {
            let inst = b.ins().call(callee, args);
            b.inst_results(inst)[0]
        };
        if self.ty == types::F64 {
            return call_lane(self.b, args);
        }
        let lanes = self.ty.lane_count() as u8;
        let mut result = None;
        for lane in 0..lanes {
            let lane_args: Vec<Value> = args
                .iter()
                .map(|&a| {
                    if self.b.func.dfg.value_type(a) == self.ty {
                        self.b.ins().extractlane(a, lane)
                    } else {
                        a // the integer exponent of `powi`
                    }
                })
                .collect();
            let r = call_lane(self.b, &lane_args);
            result = Some(match result {
                None => self.b.ins().splat(self.ty, r),
                Some(v) => self.b.ins().insertlane(v, r, lane),
            });
        }
        result.expect("a vector has lanes")
    }

    /// `powi(a, n)`.
    fn powi(&mut self, a: Value, n: i32) -> Value {
        let n = self.b.ins().iconst(types::I32, i64::from(n));
        self.call(Function::Powi, &[a, n])
    }

    /// A lane mask for `a cc c`.
    fn compare(&mut self, cc: FloatCC, a: Value, c: Value) -> Value {
        self.b.ins().fcmp(cc, a, c)
    }

    /// `mask ? x : y`, lane by lane.
    fn select(&mut self, mask: Value, x: Value, y: Value) -> Value {
        if self.ty == types::F64 {
            self.b.ins().select(mask, x, y)
        } else {
            let mask = self.b.ins().bitcast(self.ty, MemFlags::new(), mask);
            self.b.ins().bitselect(mask, x, y)
        }
    }

    /// `a cc c ? x : y`.
    fn select_if(&mut self, cc: FloatCC, a: Value, c: Value, x: Value, y: Value) -> Value {
        let mask = self.compare(cc, a, c);
        self.select(mask, x, y)
    }

    /// `kernels::Elementwise::value`.
    fn unary(&mut self, op: Elementwise, a: Value) -> Value {
        match op {
            Elementwise::Neg => self.b.ins().fneg(a),
            Elementwise::Exp => self.call(Function::Exp, &[a]),
            Elementwise::Log => self.call(Function::Ln, &[a]),
            Elementwise::Sqrt => self.b.ins().sqrt(a),
            Elementwise::Abs => self.b.ins().fabs(a),
            Elementwise::Tanh => self.call(Function::Tanh, &[a]),
            Elementwise::Sigmoid => self.call(Function::Sigmoid, &[a]),
            Elementwise::Relu => {
                let zero = self.constant(0.0);
                self.select_if(FloatCC::GreaterThan, a, zero, a, zero)
            }
            Elementwise::Softplus => self.call(Function::Softplus, &[a]),
            Elementwise::Sin => self.call(Function::Sin, &[a]),
            Elementwise::Cos => self.call(Function::Cos, &[a]),
            Elementwise::Square => self.b.ins().fmul(a, a),
            Elementwise::Powi(n) => self.powi(a, n),
            Elementwise::Powf(c) => {
                let c = self.constant(c);
                self.call(Function::Powf, &[a, c])
            }
        }
    }

    /// `kernels::Elementwise::vjp`.
    fn unary_vjp(&mut self, op: Elementwise, a: Value, out: Value, g: Value) -> Value {
        match op {
            Elementwise::Neg => self.b.ins().fneg(g),
            Elementwise::Exp => self.b.ins().fmul(g, out),
            Elementwise::Log => self.b.ins().fdiv(g, a),
            Elementwise::Sqrt => {
                let two = self.constant(2.0);
                let twice = self.b.ins().fmul(two, out);
                self.b.ins().fdiv(g, twice)
            }
            Elementwise::Abs => {
                let zero = self.constant(0.0);
                let minus = self.b.ins().fneg(g);
                let below = self.select_if(FloatCC::LessThan, a, zero, minus, zero);
                self.select_if(FloatCC::GreaterThan, a, zero, g, below)
            }
            Elementwise::Tanh => {
                let one = self.constant(1.0);
                let square = self.b.ins().fmul(out, out);
                let d = self.b.ins().fsub(one, square);
                self.b.ins().fmul(g, d)
            }
            Elementwise::Sigmoid => {
                let one = self.constant(1.0);
                let rest = self.b.ins().fsub(one, out);
                let d = self.b.ins().fmul(out, rest);
                self.b.ins().fmul(g, d)
            }
            Elementwise::Relu => {
                let zero = self.constant(0.0);
                self.select_if(FloatCC::GreaterThan, a, zero, g, zero)
            }
            Elementwise::Softplus => {
                let s = self.call(Function::Sigmoid, &[a]);
                self.b.ins().fmul(g, s)
            }
            Elementwise::Sin => {
                let c = self.call(Function::Cos, &[a]);
                self.b.ins().fmul(g, c)
            }
            Elementwise::Cos => {
                let s = self.call(Function::Sin, &[a]);
                let p = self.b.ins().fmul(g, s);
                self.b.ins().fneg(p)
            }
            Elementwise::Square => {
                let two = self.constant(2.0);
                let twice = self.b.ins().fmul(two, a);
                self.b.ins().fmul(g, twice)
            }
            Elementwise::Powi(0) => self.constant(0.0),
            Elementwise::Powi(n) => {
                let factor = self.constant(f64::from(n));
                let p = self.powi(a, n - 1);
                let d = self.b.ins().fmul(factor, p);
                self.b.ins().fmul(g, d)
            }
            Elementwise::Powf(c) => {
                let factor = self.constant(c);
                let exponent = self.constant(c - 1.0);
                let p = self.call(Function::Powf, &[a, exponent]);
                let d = self.b.ins().fmul(factor, p);
                self.b.ins().fmul(g, d)
            }
        }
    }

    /// `kernels::Arith::value`.
    fn arith(&mut self, op: Arith, a: Value, c: Value) -> Value {
        match op {
            Arith::Add => self.b.ins().fadd(a, c),
            Arith::Sub => self.b.ins().fsub(a, c),
            Arith::Mul => self.b.ins().fmul(a, c),
            Arith::Div => self.b.ins().fdiv(a, c),
            Arith::Pow => self.call(Function::Powf, &[a, c]),
            Arith::Max => self.first_if_or_nan(FloatCC::GreaterThan, a, c),
            Arith::Min => self.first_if_or_nan(FloatCC::LessThan, a, c),
        }
    }

    /// `if a cc c || a.is_nan() { a } else { c }` (`max_nan`, `min_nan`).
    fn first_if_or_nan(&mut self, cc: FloatCC, a: Value, c: Value) -> Value {
        let wins = self.compare(cc, a, c);
        let nan = self.compare(FloatCC::Unordered, a, a);
        let mask = self.b.ins().bor(wins, nan);
        self.select(mask, a, c)
    }

    /// `select_share`: `wins ? g : (mine == other ? 0.5 * g : 0)`.
    fn share(&mut self, cc: FloatCC, mine: Value, other: Value, g: Value) -> Value {
        let half = self.constant(0.5);
        let half_g = self.b.ins().fmul(half, g);
        let zero = self.constant(0.0);
        let tie = self.select_if(FloatCC::Equal, mine, other, half_g, zero);
        self.select_if(cc, mine, other, g, tie)
    }

    /// `kernels::Arith::vjp_lhs` (`lhs`) or `vjp_rhs`.
    fn arith_vjp(
        &mut self,
        op: Arith,
        lhs: bool,
        a: Value,
        c: Value,
        out: Value,
        g: Value,
    ) -> Value {
        match (op, lhs) {
            (Arith::Add, _) | (Arith::Sub, true) => g,
            (Arith::Sub, false) => self.b.ins().fneg(g),
            (Arith::Mul, true) => self.b.ins().fmul(g, c),
            (Arith::Mul, false) => self.b.ins().fmul(g, a),
            (Arith::Div, true) => self.b.ins().fdiv(g, c),
            (Arith::Div, false) => {
                let p = self.b.ins().fmul(g, out);
                let q = self.b.ins().fdiv(p, c);
                self.b.ins().fneg(q)
            }
            (Arith::Pow, true) => {
                let one = self.constant(1.0);
                let exponent = self.b.ins().fsub(c, one);
                let p = self.call(Function::Powf, &[a, exponent]);
                let d = self.b.ins().fmul(c, p);
                let value = self.b.ins().fmul(g, d);
                let zero = self.constant(0.0);
                self.select_if(FloatCC::Equal, c, zero, zero, value)
            }
            (Arith::Pow, false) => {
                let l = self.call(Function::Ln, &[a]);
                let d = self.b.ins().fmul(out, l);
                let value = self.b.ins().fmul(g, d);
                let zero = self.constant(0.0);
                self.select_if(FloatCC::Equal, a, zero, zero, value)
            }
            (Arith::Max, true) => self.share(FloatCC::GreaterThan, a, c, g),
            (Arith::Max, false) => self.share(FloatCC::GreaterThan, c, a, g),
            (Arith::Min, true) => self.share(FloatCC::LessThan, a, c, g),
            (Arith::Min, false) => self.share(FloatCC::LessThan, c, a, g),
        }
    }
}

/// Whether the interpreter writes a contribution for this operand (constants and data have
/// no adjoint).
fn has_sink(operand: &Operand) -> bool {
    matches!(operand.loc, Loc::Slot(_) | Loc::Input(_))
}
