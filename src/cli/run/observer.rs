//! The observer of `catopt run`: the trace, the progress bar, the plot recorder and the
//! checkpoints, fed by the solver at every step.

use super::minibatch::FullObjective;
use super::RunArgs;
use crate::cli::checkpoint::{MethodRecord, StateLayout};
use crate::cli::render::OutputWriter;
use crate::cli::settings::Settings;
use crate::lower::Problem;
use crate::run::solver::{Observer, SolverState, StepInfo};
use std::io::IsTerminal;

/// Trace, progress bar, checkpoints and Ctrl-C.
pub(super) struct RunObserver<'a> {
    args: &'a RunArgs,
    problem: &'a Problem,
    /// The method and schedule, as checkpoints record them.
    record: MethodRecord,
    /// The names of the method's state.
    layout: StateLayout,
    /// The trace being written (into a temporary file renamed at the end).
    trace: Option<OutputWriter>,
    /// Why the trace was lost, if it was.
    trace_error: Option<String>,
    /// Why the last checkpoint could not be written, if it could not.
    checkpoint_error: Option<String>,
    /// Whether a checkpoint was written by this run.
    pub(super) checkpoint_written: bool,
    /// What the checkpoint records besides the state (computed once).
    fingerprint: Option<crate::cli::checkpoint::Fingerprint>,
    progress: Option<indicatif::ProgressBar>,
    /// Only rank 0 of a distributed run writes anything.
    leader: bool,
    line: String,
    pub(super) plot: Option<crate::cli::plot::PlotRecorder>,
    /// A minibatch run's full objective (traced every `full_every` steps).
    full_objective: Option<FullObjective>,
}

impl<'a> RunObserver<'a> {
    pub(super) fn new(
        args: &'a RunArgs,
        problem: &'a Problem,
        settings: &Settings,
        layout: StateLayout,
        state: &SolverState,
        leader: bool,
        full_objective: Option<FullObjective>,
    ) -> Result<RunObserver<'a>, String> {
        if let Some(path) = &args.plot {
            crate::cli::plot::plot_format(path)?;
        }
        if leader {
            // Files written at the end (or every N steps) must be writable now, not after
            // hours of work.
            for output in args.output_files() {
                output.check()?;
            }
        }
        let trace = match args.output_file("--trace") {
            _ if !leader => None,
            None => None,
            Some(output) => {
                let mut writer = output.open()?;
                let mut header = String::from("step,objective,gradient_norm,step_size,evaluations");
                if full_objective.as_ref().is_some_and(|f| f.traced()) {
                    header.push_str(",full_objective");
                }
                if args.trace_boxes {
                    for b in 0..problem.diagram.box_count() {
                        header.push(',');
                        header.push_str(&csv_field(&problem.diagram.box_name(b).to_string()));
                    }
                }
                let written = writeln!(writer.writer(), "{header}");
                writer.fail_on(written)?;
                Some(writer)
            }
        };
        let progress = (leader && !args.quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(settings.stop.max_steps);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} steps  {msg}  [{elapsed_precise} < {eta}]",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.set_position(state.step);
            bar
        });
        let plot = args
            .plot
            .as_ref()
            .filter(|_| leader)
            .map(|_| crate::cli::plot::PlotRecorder::new(settings.stop.max_steps));
        Ok(RunObserver {
            plot,
            args,
            problem,
            record: MethodRecord::of(&settings.method, &settings.schedule),
            layout,
            trace,
            trace_error: None,
            checkpoint_error: None,
            checkpoint_written: false,
            fingerprint: None,
            progress,
            leader,
            line: String::new(),
            full_objective,
        })
    }

    /// The minibatch run's full objective, for the final report.
    pub(super) fn take_full_objective(&mut self) -> Option<FullObjective> {
        self.full_objective.take()
    }

    /// Puts the trace in place; returns the messages of the outputs lost so far.
    pub(super) fn finish(&mut self) -> Vec<String> {
        if let Some(bar) = self.progress.take() {
            bar.finish_and_clear();
        }
        let mut lost = Vec::new();
        if let Some(writer) = self.trace.take() {
            if let Err(message) = writer.finish() {
                lost.push(message);
            }
        }
        lost.extend(self.trace_error.take());
        lost.extend(self.checkpoint_error.take());
        lost
    }

    /// Writes the checkpoint (atomically): on failure the previous one stays in place.
    pub(super) fn write_checkpoint(
        &mut self,
        state: &SolverState,
        memory: &[(String, Vec<f64>)],
    ) -> Result<(), String> {
        let Some(output) = self.args.output_file("--checkpoint") else {
            return Ok(());
        };
        let fingerprint = self.fingerprint.get_or_insert_with(|| {
            crate::cli::checkpoint::Fingerprint::of(self.problem, self.record.clone())
        });
        let bytes =
            crate::cli::checkpoint::checkpoint_bytes(fingerprint, self.layout, state, memory);
        output.write(&bytes)?;
        self.checkpoint_written = true;
        Ok(())
    }
}

impl RunObserver<'_> {
    fn checkpoint_due(&self, step: u64) -> bool {
        self.args.checkpoint.is_some() && step > 0 && step % self.args.checkpoint_every.max(1) == 0
    }
}

impl Observer for RunObserver<'_> {
    fn wants_full_state(&self, step: u64) -> bool {
        self.checkpoint_due(step)
    }

    fn observe(&mut self, info: &StepInfo<'_>) -> Result<bool, String> {
        // Every rank takes part in the full evaluation (a collective call).
        let full = self
            .full_objective
            .as_mut()
            .map(|f| f.due(info.step, &info.state.values));
        if !self.leader {
            return Ok(true);
        }
        // Every report shows the objective as written (`maximize f` reports `f`).
        let objective = self.problem.objective_as_written(info.evaluation.objective);
        if let Some(plot) = &mut self.plot {
            plot.record(info.step, objective, info.evaluation.gradient_norm);
        }
        if let Some(writer) = &mut self.trace {
            use std::fmt::Write as _;
            self.line.clear();
            let _ = write!(
                self.line,
                "{},{:e},{:e},{:e},{}",
                info.step,
                objective,
                info.evaluation.gradient_norm,
                info.step_size,
                info.evaluations
            );
            match full {
                Some(Some(value)) => {
                    let _ = write!(self.line, ",{:e}", self.problem.objective_as_written(value));
                }
                Some(None) if self.full_objective.as_ref().is_some_and(|f| f.traced()) => {
                    self.line.push(',');
                }
                _ => {}
            }
            if self.args.trace_boxes {
                for b in 0..self.problem.diagram.box_count() {
                    let value = info.executor.box_value(b).unwrap_or(f64::NAN);
                    let _ = write!(
                        self.line,
                        ",{:e}",
                        self.problem.box_value_as_written(b, value)
                    );
                }
            }
            let written = writeln!(writer.writer(), "{}", self.line);
            if let Err(e) = written {
                // The run goes on: its other results are worth more than the trace.
                let message = writer.fail(e);
                crate::warn_line!("error: {message}\n  the run continues without the trace");
                self.trace = None;
                self.trace_error = Some(message);
            }
        }
        if let Some(bar) = &self.progress {
            bar.set_position(info.step);
            if info.step % 16 == 0 {
                bar.set_message(format!(
                    "objective {:.6e}  |grad| {:.3e}",
                    objective, info.evaluation.gradient_norm
                ));
            }
        }
        if self.checkpoint_due(info.step) {
            match self.write_checkpoint(info.state, info.memory) {
                Ok(()) => self.checkpoint_error = None,
                Err(message) => {
                    if self.checkpoint_error.is_none() {
                        crate::warn_line!(
                            "error: {message}\n  the previous checkpoint (if any) is kept; \
                             the run continues"
                        );
                    }
                    self.checkpoint_error = Some(message);
                }
            }
        }
        // Ctrl-C reaches the solver through the executor, agreed by all ranks.
        Ok(true)
    }
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}
