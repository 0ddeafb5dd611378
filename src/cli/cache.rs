//! `memescope cache`: fill the feature cache for a config's data, reporting throughput.

use anyhow::Result;

use crate::config::Config;
use crate::events::TrainEvent;
use crate::features::featurize_samples;
use crate::train::{load_dataset, select_device};

pub fn run(config: &Config) -> Result<()> {
    let device = select_device(&config.train.device)?;
    let files = std::iter::once(&config.data.train).chain(config.data.validation.as_ref());
    for file in files {
        let mut show = |event: TrainEvent| match event {
            TrainEvent::Stage { name, detail } => eprintln!("{name}: {detail}"),
            TrainEvent::Progress { stage, done, total, per_second } if done == total => {
                eprintln!("{stage}: {done}/{total} ({per_second:.1}/s)")
            }
            _ => {}
        };
        let data = load_dataset(config, file, config.data.images.as_deref(), &mut show)?;
        let (features, _) = featurize_samples(config, &data.feature_input(), &device, &mut show)?;
        let dims = features.dims()?;
        let text = match &features.tokens {
            Some(tokens) => format!(
                "token states of width {} ({} tokens)",
                tokens.hidden(),
                tokens.lengths().iter().sum::<usize>()
            ),
            None => format!("{:?}", dims.text),
        };
        println!(
            "{}: {} samples, text features {text}, image features {:?}",
            file.display(),
            data.dataset.len(),
            dims.image
        );
    }
    Ok(())
}
