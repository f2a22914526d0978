//! `catopt run ... --plot FILE.svg|png`: objective and gradient norm per step, log scale.
//!
//! [`PlotRecorder`] collects the per-step values from the run's observer into buffers sized
//! once (it thins its samples by half whenever they fill, so a long run neither allocates
//! in the loop nor grows without bound); [`write_plot`] draws them with plotters. Text uses
//! the DejaVu Sans font compiled into the binary, so neither SVG nor PNG needs system fonts.

use super::render::OutputFile;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

/// At most this many samples are kept; beyond, every other sample is dropped (and the
/// sampling stride doubles), which keeps the first and evenly spaced later steps.
pub const MAX_SAMPLES: usize = 1 << 16;

/// Per-step objective and gradient norm, thinned to at most [`MAX_SAMPLES`] samples.
#[derive(Debug, Clone, Default)]
pub struct PlotRecorder {
    steps: Vec<u64>,
    objective: Vec<f64>,
    gradient_norm: Vec<f64>,
    stride: u64,
    last: Option<(u64, f64, f64)>,
}

impl PlotRecorder {
    /// A recorder with room for `expected_steps + 1` samples (capped at [`MAX_SAMPLES`]).
    pub fn new(expected_steps: u64) -> PlotRecorder {
        let capacity = (expected_steps.saturating_add(1)).min(MAX_SAMPLES as u64) as usize;
        PlotRecorder {
            steps: Vec::with_capacity(capacity.max(2)),
            objective: Vec::with_capacity(capacity.max(2)),
            gradient_norm: Vec::with_capacity(capacity.max(2)),
            stride: 1,
            last: None,
        }
    }

    /// Records the iterate after `step` updates. Allocates only if more than the expected
    /// number of steps arrive before the buffers reach [`MAX_SAMPLES`].
    pub fn record(&mut self, step: u64, objective: f64, gradient_norm: f64) {
        self.last = Some((step, objective, gradient_norm));
        if step % self.stride != 0 {
            return;
        }
        if self.steps.len() == MAX_SAMPLES {
            // Keep every other sample: the ones on the doubled stride.
            self.stride *= 2;
            let stride = self.stride;
            let mut kept = 0;
            for i in 0..self.steps.len() {
                if self.steps[i] % stride == 0 {
                    self.steps[kept] = self.steps[i];
                    self.objective[kept] = self.objective[i];
                    self.gradient_norm[kept] = self.gradient_norm[i];
                    kept += 1;
                }
            }
            self.steps.truncate(kept);
            self.objective.truncate(kept);
            self.gradient_norm.truncate(kept);
            if step % stride != 0 {
                return;
            }
        }
        self.steps.push(step);
        self.objective.push(objective);
        self.gradient_norm.push(gradient_norm);
    }

    /// The samples (step, objective, gradient norm), the last iterate always included.
    pub fn samples(&self) -> Vec<(u64, f64, f64)> {
        let mut out: Vec<(u64, f64, f64)> = self
            .steps
            .iter()
            .zip(&self.objective)
            .zip(&self.gradient_norm)
            .map(|((&s, &o), &g)| (s, o, g))
            .collect();
        if let Some(last) = self.last {
            if out.last().map(|l| l.0) != Some(last.0) {
                out.push(last);
            }
        }
        out
    }
}

static FONT: Once = Once::new();

fn register_font() {
    FONT.call_once(|| {
        // The font is compiled in; failing to parse it would be a packaging bug, and then
        // text is left out rather than the plot.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

/// The image format chosen by a file's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlotFormat {
    /// Scalable vector graphics.
    Svg,
    /// A 1000 x 750 PNG bitmap.
    Png,
}

/// The format for `path` (`.svg` or `.png`, any case), or a message naming the choices.
pub fn plot_format(path: &Path) -> Result<PlotFormat, String> {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .as_deref()
    {
        Some("svg") => Ok(PlotFormat::Svg),
        Some("png") => Ok(PlotFormat::Png),
        _ => Err(format!(
            "--plot {}: the file name must end in .svg or .png",
            path.display()
        )),
    }
}

/// Draws objective and gradient norm per step into `path` (SVG or PNG by extension), one
/// panel each, titled `title`, on log scales. An objective that reaches zero or below is
/// drawn as its gap to the lowest value seen (the axis says so). With `maximised`, the
/// objective (as written) was maximised: its axis says so, and an objective that is not
/// positive throughout is drawn as its gap to the highest value seen.
///
/// The picture is drawn in memory (PNG: into a scratch file of a unique name in the temporary
/// folder, as the PNG encoder writes files) and then written like every output
/// ([`OutputFile`]): a failure never leaves an empty or partial picture behind.
pub fn write_plot(
    output: &OutputFile<'_>,
    title: &str,
    recorder: &PlotRecorder,
    maximised: bool,
) -> Result<(), String> {
    register_font();
    let format = plot_format(output.path)?;
    let samples = recorder.samples();
    let size = (1000u32, 750u32);
    let drawn = match format {
        PlotFormat::Svg => {
            let mut text = String::new();
            {
                let root = SVGBackend::with_string(&mut text, size).into_drawing_area();
                draw(&root, title, &samples, maximised)
                    .and_then(|_| root.present().map_err(|e| e.to_string()))?;
            }
            Ok(text.into_bytes())
        }
        PlotFormat::Png => {
            let scratch = std::env::temp_dir().join(format!(
                "catopt-plot-{}-{}.png",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0)
            ));
            let result = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&scratch)
                .map_err(|e| e.to_string())
                .and_then(|_| {
                    let root = BitMapBackend::new(&scratch, size).into_drawing_area();
                    draw(&root, title, &samples, maximised)
                        .and_then(|_| root.present().map_err(|e| e.to_string()))
                })
                .and_then(|_| std::fs::read(&scratch).map_err(|e| e.to_string()));
            let _ = std::fs::remove_file(&scratch);
            result
        }
    };
    let bytes = drawn.map_err(|e| format!("cannot draw --plot {}: {e}", output.path.display()))?;
    output.write(&bytes)
}

/// A named curve of (step, value) points, its colour, and whether it was maximised (then a
/// curve that is not positive throughout is drawn as its gap to the highest value).
type Series = (&'static str, Vec<(u64, f64)>, RGBColor, bool);

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    samples: &[(u64, f64, f64)],
    maximised: bool,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(err)?;
    let root = root.titled(title, ("sans-serif", 22)).map_err(err)?;
    let panels = root.split_evenly((2, 1));
    let last_step = samples.last().map(|s| s.0).unwrap_or(0).max(1);
    let series: [Series; 2] = [
        (
            if maximised {
                "objective (maximised)"
            } else {
                "objective"
            },
            samples.iter().map(|s| (s.0, s.1)).collect(),
            RGBColor(31, 119, 180),
            maximised,
        ),
        (
            "gradient norm",
            samples.iter().map(|s| (s.0, s.2)).collect(),
            RGBColor(214, 39, 40),
            false,
        ),
    ];
    for (panel, (name, points, color, maximised)) in panels.iter().zip(series) {
        let finite: Vec<(u64, f64)> = points.into_iter().filter(|p| p.1.is_finite()).collect();
        let positive = !finite.is_empty() && finite.iter().all(|p| p.1 > 0.0);
        // An objective that reaches zero or below is drawn as its gap to the lowest value
        // seen, F(x_k) - min F, which a log scale can show (the minimum itself drops out).
        let (points, label) = if positive || finite.is_empty() {
            (finite, format!("{name} (log scale)"))
        } else if maximised {
            // Maximised: the gap to the highest value seen, max F - F(x_k).
            let highest = finite.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
            let gaps: Vec<(u64, f64)> = finite
                .iter()
                .map(|p| (p.0, highest - p.1))
                .filter(|p| p.1 > 0.0)
                .collect();
            (gaps, format!("({highest:.6e}) - {name} (log scale)"))
        } else {
            let lowest = finite.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
            let gaps: Vec<(u64, f64)> = finite
                .iter()
                .map(|p| (p.0, p.1 - lowest))
                .filter(|p| p.1 > 0.0)
                .collect();
            (gaps, format!("{name} - ({lowest:.6e}) (log scale)"))
        };
        let (low, high) = points
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |acc, p| {
                (acc.0.min(p.1), acc.1.max(p.1))
            });
        let (low, high) = if points.is_empty() {
            (0.1, 10.0)
        } else if high / low < 10.0 {
            (low / 3.0, high * 3.0)
        } else {
            (low / 1.5, high * 1.5)
        };
        let mut chart = ChartBuilder::on(panel)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d(
                0u64..last_step,
                (low..high)
                    .log_scale()
                    .with_key_points(log_ticks(low, high)),
            )
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("step")
            .y_desc(label)
            .y_label_formatter(&|v| format!("{v:.1e}"))
            .draw()
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(err)?;
    }
    Ok(())
}

/// At most this many labels on a log axis.
const MAX_LOG_TICKS: usize = 12;

/// The labelled values of a log axis over `low..high` (0 < low < high): every power of ten in
/// the range, or every few (1, 2, 5, 10, ... decades apart, at most [`MAX_LOG_TICKS`]), so
/// the labels cover the whole range however many decades it spans (1e-28 to 1e1 included).
/// A range holding fewer than two powers of ten is labelled at its ends and its middle.
fn log_ticks(low: f64, high: f64) -> Vec<f64> {
    if !(low > 0.0 && high > low && high.is_finite()) {
        return Vec::new();
    }
    let first = low.log10().ceil() as i32;
    let last = high.log10().floor() as i32;
    if last - first < 1 {
        return vec![low, (low * high).sqrt(), high];
    }
    let decades = (last - first) as usize + 1;
    let step = [1, 2, 5, 10, 20, 50, 100]
        .into_iter()
        .find(|s| decades.div_ceil(*s) <= MAX_LOG_TICKS)
        .unwrap_or(100);
    // Multiples of the step, so the labels are round powers (1e-28, 1e-24, ... not 1e-27, ...).
    let start = first.div_euclid(step as i32) * step as i32;
    let start = if start < first {
        start + step as i32
    } else {
        start
    };
    (start..=last)
        .step_by(step)
        .map(|e| 10f64.powi(e))
        .filter(|v| (low..=high).contains(v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ticks_cover_the_whole_range() {
        // A run whose gradient norm reaches 1e-28: labels down to there, not only to 1e-15.
        let ticks = log_ticks(1e-28 / 1.5, 10.0 * 1.5);
        assert!(
            ticks.len() >= 5 && ticks.len() <= MAX_LOG_TICKS,
            "{ticks:?}"
        );
        assert!(ticks[0] <= 1e-24, "{ticks:?}");
        assert!(*ticks.last().unwrap() >= 1.0, "{ticks:?}");
        assert!(ticks.windows(2).all(|w| w[0] < w[1]));
        // Few decades: one label each.
        assert_eq!(log_ticks(0.5e-3, 2.0), vec![1e-3, 1e-2, 1e-1, 1.0]);
        // Within one decade: the ends and the middle.
        assert_eq!(log_ticks(2.0, 8.0).len(), 3);
    }

    #[test]
    fn the_recorder_thins_long_runs_and_keeps_the_last_iterate() {
        let mut recorder = PlotRecorder::new(10);
        let total = 3 * MAX_SAMPLES as u64 + 7;
        for step in 0..=total {
            recorder.record(step, 1.0 / (step as f64 + 1.0), 1.0);
        }
        let samples = recorder.samples();
        assert!(samples.len() <= MAX_SAMPLES + 1, "{}", samples.len());
        assert!(samples.len() > MAX_SAMPLES / 4, "{}", samples.len());
        assert_eq!(samples[0].0, 0);
        assert_eq!(samples.last().unwrap().0, total);
        assert!(samples.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn short_runs_keep_every_step() {
        let mut recorder = PlotRecorder::new(5);
        for step in 0..=5 {
            recorder.record(step, step as f64, 0.5);
        }
        let steps: Vec<u64> = recorder.samples().iter().map(|s| s.0).collect();
        assert_eq!(steps, vec![0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn formats_come_from_the_extension() {
        assert_eq!(plot_format(Path::new("a.SVG")), Ok(PlotFormat::Svg));
        assert_eq!(plot_format(Path::new("a.png")), Ok(PlotFormat::Png));
        assert!(plot_format(Path::new("a.pdf"))
            .unwrap_err()
            .contains(".svg or .png"));
    }
}
