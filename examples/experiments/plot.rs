//! The experiments' plots: panels side by side, each a few named curves on a log y axis,
//! drawn as SVG with plotters (DejaVu Sans compiled in, as `catopt run --plot` does).

use plotters::prelude::*;
use std::sync::Once;

/// A named curve of (x, y) points; points with y <= 0 or not finite are left out.
pub struct Curve {
    /// The legend's name.
    pub name: String,
    /// The points, x increasing.
    pub points: Vec<(f64, f64)>,
}

/// One panel: its title, its axes' descriptions and its curves.
pub struct Panel {
    /// Above the panel.
    pub title: String,
    /// The x axis' description.
    pub x_desc: String,
    /// The y axis' description (the axis is logarithmic).
    pub y_desc: String,
    /// The curves, coloured in order.
    pub curves: Vec<Curve>,
}

const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(127, 127, 127),
];

static FONT: Once = Once::new();

/// The panels side by side in an SVG of `width` x 500 points, as a string.
pub fn svg(title: &str, panels: &[Panel], width: u32) -> Result<String, String> {
    FONT.call_once(|| {
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, (width, 500)).into_drawing_area();
        let err = |e: DrawingAreaErrorKind<_>| e.to_string();
        root.fill(&WHITE).map_err(err)?;
        let root = root.titled(title, ("sans-serif", 20)).map_err(err)?;
        let areas = root.split_evenly((1, panels.len().max(1)));
        for (area, panel) in areas.iter().zip(panels) {
            let curves: Vec<(&str, Vec<(f64, f64)>)> = panel
                .curves
                .iter()
                .map(|c| {
                    let points = c
                        .points
                        .iter()
                        .copied()
                        .filter(|p| p.0.is_finite() && p.1.is_finite() && p.1 > 0.0)
                        .collect();
                    (c.name.as_str(), points)
                })
                .collect();
            let all = curves.iter().flat_map(|c| c.1.iter());
            let (x0, x1, y0, y1) = all.fold(
                (
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                ),
                |a, p| (a.0.min(p.0), a.1.max(p.0), a.2.min(p.1), a.3.max(p.1)),
            );
            if !(x0 < x1 && y0 <= y1) {
                return Err(format!("panel `{}` has nothing to draw", panel.title));
            }
            let mut chart = ChartBuilder::on(area)
                .caption(&panel.title, ("sans-serif", 16))
                .margin(10)
                .x_label_area_size(40)
                .y_label_area_size(70)
                .build_cartesian_2d(x0..x1, (y0 / 1.5..y1 * 1.5).log_scale())
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_desc(panel.x_desc.as_str())
                .y_desc(panel.y_desc.as_str())
                .y_label_formatter(&|v| format!("{v:.0e}"))
                .draw()
                .map_err(err)?;
            for (k, (name, points)) in curves.into_iter().enumerate() {
                let colour = COLOURS[k % COLOURS.len()];
                chart
                    .draw_series(LineSeries::new(points, colour.stroke_width(2)))
                    .map_err(err)?
                    .label(name)
                    .legend(move |(x, y)| {
                        PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .position(SeriesLabelPosition::UpperRight)
                .draw()
                .map_err(err)?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(text)
}
