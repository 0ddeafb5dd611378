//! The report's figures, each drawable as PNG and SVG through [`super::canvas::render`].

mod class_f1;
mod confusion;
mod gates;
mod heatmap;
mod loss;

pub use class_f1::ClassF1;
pub use confusion::confusion_heatmap;
pub use gates::gate_heatmap;
pub use loss::LossCurves;
