//! The meme image of the sample open in the Errors detail view.

use std::path::{Path, PathBuf};

use ratatui::layout::Rect;
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;
use ratatui_image::picker::Picker;
use ratatui_image::protocol::StatefulProtocol;
use ratatui_image::StatefulImage;

/// Images are shrunk to at most this many pixels a side before encoding: a terminal cell
/// shows far fewer, and resizing a full-size photo at every draw would stall the UI.
const MAX_SIDE: u32 = 512;

/// The picker for the real terminal. Call after entering raw mode and the alternate screen
/// and before reading terminal events.
///
/// ratatui-image asks the terminal which graphics protocol it speaks and reads the answer
/// on a helper thread. When nobody answers (tmux without `allow-passthrough` forwards the
/// query to no one), that thread stays blocked on stdin after the timeout and swallows the
/// user's first key press. So inside tmux, or with `MEMESCOPE_IMAGES=halfblocks`, we do not
/// ask and draw images with half blocks.
pub fn terminal_picker() -> Picker {
    let in_tmux = std::env::var_os("TMUX").is_some_and(|v| !v.is_empty());
    let forced = std::env::var("MEMESCOPE_IMAGES").is_ok_and(|v| v == "halfblocks");
    if in_tmux || forced {
        tracing::info!("not querying the terminal for graphics; using half blocks");
        return Picker::halfblocks();
    }
    Picker::from_query_stdio().unwrap_or_else(|err| {
        tracing::info!("terminal graphics query failed ({err}); using half blocks");
        Picker::halfblocks()
    })
}

pub struct ImagePreview {
    picker: Picker,
    /// The image last asked for, and its encoded form or why there is none.
    current: Option<(Option<PathBuf>, Result<StatefulProtocol, String>)>,
}

impl Default for ImagePreview {
    fn default() -> Self {
        Self::new(Picker::halfblocks())
    }
}

impl ImagePreview {
    pub fn new(picker: Picker) -> Self {
        Self { picker, current: None }
    }

    /// Uses the terminal's graphics protocol from now on.
    pub fn set_picker(&mut self, picker: Picker) {
        self.picker = picker;
        self.current = None;
    }

    fn load(&self, path: Option<&Path>) -> Result<StatefulProtocol, String> {
        let path = path.ok_or("no image: the sample has none")?;
        let image = image::ImageReader::open(path)
            .and_then(|reader| reader.with_guessed_format())
            .map_err(|err| format!("no image: cannot open {}: {err}", path.display()))?
            .decode()
            .map_err(|err| format!("no image: cannot decode {}: {err}", path.display()))?;
        Ok(self.picker.new_resize_protocol(image.thumbnail(MAX_SIDE, MAX_SIDE)))
    }

    pub fn draw(&mut self, frame: &mut Frame, area: Rect, path: Option<&Path>) {
        let wanted = path.map(Path::to_path_buf);
        if self.current.as_ref().is_none_or(|(shown, _)| *shown != wanted) {
            let loaded = self.load(path);
            if let Err(reason) = &loaded {
                tracing::debug!("{reason}");
            }
            self.current = Some((wanted, loaded));
        }
        let block = Block::bordered().title("image");
        let inner = block.inner(area);
        frame.render_widget(block, area);
        match &mut self.current {
            Some((_, Ok(protocol))) => {
                frame.render_stateful_widget(StatefulImage::default(), inner, protocol)
            }
            Some((_, Err(reason))) => frame.render_widget(
                Paragraph::new(reason.as_str()).wrap(ratatui::widgets::Wrap { trim: true }),
                inner,
            ),
            None => {}
        }
    }
}
