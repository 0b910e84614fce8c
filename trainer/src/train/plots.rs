//! PNG figures of a run: each task's validation loss with its Early Freeze point (as the
//! thesis's Figures 5.1 and 5.2), the loss weights over epochs, confusion matrices and group
//! tables as bars. Text is drawn with DejaVu Sans, compiled in, so no system font is needed.

use std::path::Path;
use std::sync::Once;

use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, register_font};

use crate::groups::{Confusion, GroupTable};
use facemtl::calibration::Reliability;
use facemtl::mtl::Metric;
use facemtl::training::MetricRow;

const FONT: &str = "sans-serif";
const COLOURS: [RGBColor; 5] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn font() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        if register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).is_err() {
            panic!("the compiled-in DejaVu Sans font is valid");
        }
    });
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// Draw on a white `width x height` canvas and save it as PNG.
fn png(path: &Path, (width, height): (u32, u32), draw: impl FnOnce(&Area) -> Result<()>) -> Result<()> {
    font();
    let mut pixels = vec![0u8; (width * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
        draw(&root)?;
        root.present().map_err(|e| anyhow!("{e}"))?;
    }
    let image = image::RgbImage::from_raw(width, height, pixels).ok_or_else(|| anyhow!("plot buffer size"))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    image.save(path)?;
    Ok(())
}

fn err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("plotting: {e}")
}

fn tasks_of(rows: &[MetricRow]) -> Vec<String> {
    let mut tasks: Vec<String> = Vec::new();
    for r in rows {
        if !tasks.contains(&r.task) {
            tasks.push(r.task.clone());
        }
    }
    tasks
}

/// One panel per task: training and validation loss per epoch, the epoch the task converged
/// marked in red (Early Freeze restores that task to its best epoch, drawn as a dot).
pub fn loss_curves(rows: &[MetricRow], path: &Path) -> Result<()> {
    let tasks = tasks_of(rows);
    png(path, (420 * tasks.len().max(1) as u32, 340), |root| {
        for (area, task) in root.split_evenly((1, tasks.len().max(1))).iter().zip(&tasks) {
            let mine: Vec<&MetricRow> = rows.iter().filter(|r| &r.task == task).collect();
            let last = mine.iter().map(|r| r.epoch).max().unwrap_or(0) as f64;
            let top =
                mine.iter().flat_map(|r| [r.val_loss, r.train_loss]).filter(|v| v.is_finite()).fold(0.0, f64::max);
            let mut chart = ChartBuilder::on(area)
                .caption(format!("{task}: loss per epoch"), (FONT, 18))
                .margin(12)
                .x_label_area_size(32)
                .y_label_area_size(52)
                .build_cartesian_2d(0.0..last.max(1.0), 0.0..top * 1.05 + 1e-9)
                .map_err(err)?;
            chart.configure_mesh().x_desc("epoch").y_desc("loss").light_line_style(WHITE).draw().map_err(err)?;
            let active = |r: &&&MetricRow| r.event != "frozen";
            for (name, colour, value) in [
                ("train", COLOURS[1], (|r: &MetricRow| r.train_loss) as fn(&MetricRow) -> f64),
                ("validation", COLOURS[0], |r: &MetricRow| r.val_loss),
            ] {
                chart
                    .draw_series(LineSeries::new(
                        mine.iter().filter(active).map(|r| (r.epoch as f64, value(r))),
                        colour.stroke_width(2),
                    ))
                    .map_err(err)?
                    .label(name)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
            }
            if let Some(converged) = mine.iter().find(|r| r.event == "converged") {
                let x = converged.epoch as f64;
                chart.draw_series(LineSeries::new([(x, 0.0), (x, top * 1.05)], RED.stroke_width(1))).map_err(err)?;
                chart
                    .draw_series(std::iter::once(Text::new(
                        format!(" frozen (epoch {}) ", converged.epoch),
                        (x, top * 1.02),
                        // Near the right edge the label goes left of the line.
                        (FONT, 13)
                            .into_font()
                            .color(&RED)
                            .pos(Pos::new(if x > 0.6 * last { HPos::Right } else { HPos::Left }, VPos::Top)),
                    )))
                    .map_err(err)?;
                let best =
                    mine.iter().filter(|r| r.epoch <= converged.epoch).min_by(|a, b| a.val_loss.total_cmp(&b.val_loss));
                if let Some(best) = best {
                    chart
                        .draw_series(std::iter::once(Circle::new((best.epoch as f64, best.val_loss), 5, RED.filled())))
                        .map_err(err)?;
                }
            }
            chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw().map_err(err)?;
        }
        Ok(())
    })
}

/// A reliability diagram: per confidence bin, how often the answers were right against how
/// sure they were, before and after calibration, beside the diagonal a calibrated model keeps;
/// each dot's area follows its bin's faces.
pub fn reliability(task: &str, before: &[Reliability], after: &[Reliability], path: &Path) -> Result<()> {
    png(path, (460, 420), |root| {
        let low = before.iter().chain(after).map(|b| b.confidence.min(b.accuracy)).fold(1.0, f64::min);
        let low = (low * 10.0).floor() / 10.0;
        let mut chart = ChartBuilder::on(root)
            .caption(format!("{task}: reliability on test faces"), (FONT, 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(52)
            .build_cartesian_2d(low..1.0, low..1.0)
            .map_err(err)?;
        chart.configure_mesh().x_desc("confidence").y_desc("accuracy").light_line_style(WHITE).draw().map_err(err)?;
        chart.draw_series(LineSeries::new([(low, low), (1.0, 1.0)], BLACK.stroke_width(1))).map_err(err)?;
        let most = before.iter().chain(after).map(|b| b.count).max().unwrap_or(1) as f64;
        for (name, colour, bins) in [("before", COLOURS[1], before), ("after", COLOURS[0], after)] {
            let points: Vec<(f64, f64)> = bins.iter().map(|b| (b.confidence, b.accuracy)).collect();
            chart
                .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
                .map_err(err)?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
            let dots = bins.iter().map(|b| {
                let radius = (3.0 + 9.0 * (b.count as f64 / most).sqrt()) as i32;
                Circle::new((b.confidence, b.accuracy), radius, colour.mix(0.5).filled())
            });
            chart.draw_series(dots).map_err(err)?;
        }
        chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw().map_err(err)?;
        Ok(())
    })
}

/// Each task's loss weight per epoch (constant for `average`; learned, uncertainty and DWA move).
pub fn loss_weights(rows: &[MetricRow], path: &Path) -> Result<()> {
    let tasks = tasks_of(rows);
    png(path, (560, 340), |root| {
        let last = rows.iter().map(|r| r.epoch).max().unwrap_or(0) as f64;
        let top = rows.iter().map(|r| r.loss_weight).filter(|v| v.is_finite()).fold(0.0, f64::max);
        let mut chart = ChartBuilder::on(root)
            .caption("Loss weight per task", (FONT, 18))
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(52)
            .build_cartesian_2d(0.0..last.max(1.0), 0.0..(top * 1.1).max(0.1))
            .map_err(err)?;
        chart.configure_mesh().x_desc("epoch").y_desc("weight").light_line_style(WHITE).draw().map_err(err)?;
        for (i, task) in tasks.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            chart
                .draw_series(LineSeries::new(
                    rows.iter().filter(|r| &r.task == task).map(|r| (r.epoch as f64, r.loss_weight)),
                    colour.stroke_width(2),
                ))
                .map_err(err)?
                .label(task.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
        }
        chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw().map_err(err)?;
        Ok(())
    })
}

/// A confusion matrix as a grid of cells shaded by each true class's share, with counts.
pub fn confusion(matrix: &Confusion, path: &Path) -> Result<()> {
    let k = matrix.labels.len();
    let cell = 70u32;
    let size = (cell * k as u32 + 150, cell * k as u32 + 120);
    png(path, size, |root| {
        let root =
            root.titled(&format!("{}: true (rows) vs predicted (columns)", matrix.task), (FONT, 16)).map_err(err)?;
        for (t, row) in matrix.counts.iter().enumerate() {
            let total = row.iter().sum::<usize>().max(1) as f64;
            let y = 40 + t as i32 * cell as i32;
            root.draw(&Text::new(matrix.labels[t].clone(), (8, y + cell as i32 / 2 - 7), (FONT, 14))).map_err(err)?;
            for (p, &count) in row.iter().enumerate() {
                let x = 100 + p as i32 * cell as i32;
                let share = count as f64 / total;
                let shade = (255.0 * (1.0 - 0.8 * share)) as u8;
                let fill = RGBColor(shade, shade, 255);
                root.draw(&Rectangle::new([(x, y), (x + cell as i32 - 2, y + cell as i32 - 2)], fill.filled()))
                    .map_err(err)?;
                let ink = if share > 0.5 { WHITE } else { BLACK };
                root.draw(&Text::new(
                    format!("{count}"),
                    (x + 8, y + cell as i32 / 2 - 14),
                    (FONT, 14).into_font().color(&ink),
                ))
                .map_err(err)?;
                root.draw(&Text::new(
                    format!("{:.0}%", 100.0 * share),
                    (x + 8, y + cell as i32 / 2 + 4),
                    (FONT, 12).into_font().color(&ink),
                ))
                .map_err(err)?;
            }
        }
        for (p, label) in matrix.labels.iter().enumerate() {
            let x = 100 + p as i32 * cell as i32;
            root.draw(&Text::new(label.clone(), (x + 4, 44 + k as i32 * cell as i32), (FONT, 13))).map_err(err)?;
        }
        Ok(())
    })
}

/// A group table as bars, the worst group in red.
pub fn group_bars(table: &GroupTable, path: &Path) -> Result<()> {
    let n = table.groups.len().max(1);
    png(path, ((90 * n as u32).max(360) + 80, 340), |root| {
        let top = table.groups.iter().map(|g| g.value).fold(0.0, f64::max);
        let top = if table.figure == Metric::Accuracy { 1.0 } else { top * 1.15 + 1e-9 };
        let mut chart = ChartBuilder::on(root)
            .caption(&table.title, (FONT, 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(52)
            .build_cartesian_2d(0.0..n as f64, 0.0..top)
            .map_err(err)?;
        let labels: Vec<String> = table.groups.iter().map(|g| format!("{} ({})", g.label, g.count)).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n * 2 + 1)
            .x_label_formatter(&|x| {
                let i = x.floor() as usize;
                if (x - i as f64 - 0.5).abs() < 0.01 {
                    labels.get(i).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_desc(if table.figure == Metric::Mae { "MAE (years)" } else { "accuracy" })
            .draw()
            .map_err(err)?;
        let worst = table.worst().map(|w| w.label.clone());
        chart
            .draw_series(table.groups.iter().enumerate().map(|(i, g)| {
                let colour = if Some(&g.label) == worst.as_ref() { RED } else { COLOURS[0] };
                Rectangle::new([(i as f64 + 0.15, 0.0), (i as f64 + 0.85, g.value)], colour.filled())
            }))
            .map_err(err)?;
        Ok(())
    })
}
