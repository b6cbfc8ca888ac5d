//! Line editor: turns raw console bytes into submitted lines, with echo, backspace, Ctrl-C and Ctrl-U.

use alloc::vec::Vec;

use crate::error::{codes, ShellError};

/// Where the editor sends what a terminal should show.
pub trait Echo {
    /// Shows `bytes` on the terminal.
    fn echo(&mut self, bytes: &[u8]);
}

/// What a byte completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditEvent {
    /// Enter pressed: the line's bytes, unvalidated.
    Line(Vec<u8>),
    /// Ctrl-C: the line was discarded.
    Cancelled,
    /// Enter pressed on a line longer than the limit; `length` counts every byte typed.
    TooLong {
        /// Bytes in the rejected line.
        length: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    None,
    /// After ESC.
    Started,
    /// Inside `ESC [` parameters.
    ControlSequence,
}

const CTRL_C: u8 = 0x03;
const BACKSPACE: u8 = 0x08;
const TAB: u8 = 0x09;
const CTRL_U: u8 = 0x15;
const ESC: u8 = 0x1b;
const DELETE: u8 = 0x7f;
const ERASE_COLUMN: &[u8] = b"\x08 \x08";

/// Accumulates one line of input.
///
/// Printable bytes and bytes >= 0x80 are stored and echoed; other control
/// bytes are stored (so the line is rejected later with a clear error) and
/// echoed in caret notation, never raw. ESC sequences (arrow keys) are
/// swallowed. Bytes past the limit are counted but neither stored nor echoed.
#[derive(Debug)]
pub struct LineEditor {
    buffer: Vec<u8>,
    max_line_bytes: usize,
    typed_bytes: usize,
    escape: Escape,
    after_carriage_return: bool,
}

impl LineEditor {
    /// An editor accepting lines of up to `max_line_bytes` bytes.
    pub fn new(max_line_bytes: usize) -> Self {
        LineEditor {
            buffer: Vec::new(),
            max_line_bytes,
            typed_bytes: 0,
            escape: Escape::None,
            after_carriage_return: false,
        }
    }

    /// The line limit in bytes.
    pub fn max_line_bytes(&self) -> usize {
        self.max_line_bytes
    }

    /// The error for an [`EditEvent::TooLong`] line of `length` bytes: nothing of it runs.
    pub fn too_long_error(&self, length: usize) -> ShellError {
        ShellError::new(
            codes::LINE_TOO_LONG,
            alloc::format!(
                "line of {length} bytes is longer than the limit of {}; nothing was run",
                self.max_line_bytes
            ),
        )
    }

    /// Bytes of the line typed so far (stored ones).
    pub fn pending(&self) -> &[u8] {
        &self.buffer
    }

    /// Feeds one byte; returns an event when it completes or cancels a line.
    pub fn feed(&mut self, byte: u8, echo: &mut dyn Echo) -> Option<EditEvent> {
        // A C0 control ends any escape sequence and then acts normally, so
        // Enter and Ctrl-C always work, whatever garbage came before.
        if byte < 0x20 && byte != ESC {
            self.escape = Escape::None;
        }
        match self.escape {
            Escape::Started => {
                self.escape = if byte == b'[' { Escape::ControlSequence } else { Escape::None };
                return None;
            }
            Escape::ControlSequence => {
                if (0x40..=0x7e).contains(&byte) {
                    self.escape = Escape::None;
                }
                return None;
            }
            Escape::None => {}
        }
        let after_carriage_return = core::mem::replace(&mut self.after_carriage_return, byte == b'\r');
        match byte {
            b'\n' if after_carriage_return => None,
            b'\r' | b'\n' => {
                echo.echo(b"\r\n");
                let length = self.typed_bytes;
                let line = core::mem::take(&mut self.buffer);
                self.typed_bytes = 0;
                Some(if length > self.max_line_bytes { EditEvent::TooLong { length } } else { EditEvent::Line(line) })
            }
            CTRL_C => {
                echo.echo(b"^C\r\n");
                self.buffer.clear();
                self.typed_bytes = 0;
                Some(EditEvent::Cancelled)
            }
            BACKSPACE | DELETE => {
                self.erase_last(echo);
                None
            }
            CTRL_U => {
                while !self.buffer.is_empty() {
                    self.erase_last(echo);
                }
                self.typed_bytes = 0;
                None
            }
            ESC => {
                self.escape = Escape::Started;
                None
            }
            _ => {
                self.store(byte, echo);
                None
            }
        }
    }

    fn store(&mut self, byte: u8, echo: &mut dyn Echo) {
        self.typed_bytes = self.typed_bytes.saturating_add(1);
        if self.typed_bytes > self.max_line_bytes {
            return;
        }
        self.buffer.push(byte);
        match byte {
            TAB => echo.echo(b" "),
            0x00..=0x1f => echo.echo(&[b'^', byte + 0x40]),
            _ => echo.echo(&[byte]),
        }
    }

    /// Removes the last character: a whole UTF-8 sequence when the tail forms one.
    fn erase_last(&mut self, echo: &mut dyn Echo) {
        if self.typed_bytes > self.buffer.len() {
            self.typed_bytes -= 1;
            return;
        }
        let Some(&last) = self.buffer.last() else { return };
        let sequence_length = (2..=4)
            .filter(|&length| length <= self.buffer.len())
            .find(|&length| {
                let tail = &self.buffer[self.buffer.len() - length..];
                core::str::from_utf8(tail).is_ok_and(|text| text.chars().count() == 1)
            })
            .filter(|_| last >= 0x80)
            .unwrap_or(1);
        self.buffer.truncate(self.buffer.len() - sequence_length);
        self.typed_bytes -= sequence_length;
        let columns = if last < 0x20 && last != TAB { 2 } else { 1 };
        for _ in 0..columns {
            echo.echo(ERASE_COLUMN);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[derive(Default)]
    struct Screen(Vec<u8>);

    impl Echo for Screen {
        fn echo(&mut self, bytes: &[u8]) {
            self.0.extend_from_slice(bytes);
        }
    }

    fn feed_all(editor: &mut LineEditor, bytes: &[u8], screen: &mut Screen) -> Vec<EditEvent> {
        bytes.iter().filter_map(|&byte| editor.feed(byte, screen)).collect()
    }

    #[test]
    fn enter_submits_and_crlf_submits_once() {
        let mut editor = LineEditor::new(64);
        let mut screen = Screen::default();
        let events = feed_all(&mut editor, b"echo hi\r\nversion\n", &mut screen);
        assert_eq!(events, [EditEvent::Line(b"echo hi".to_vec()), EditEvent::Line(b"version".to_vec())]);
        assert_eq!(screen.0, b"echo hi\r\nversion\r\n");
    }

    #[test]
    fn backspace_erases_whole_utf8_character() {
        let mut editor = LineEditor::new(64);
        let mut screen = Screen::default();
        let events = feed_all(&mut editor, "aé\x7f\x7fb\r".as_bytes(), &mut screen);
        assert_eq!(events, [EditEvent::Line(b"b".to_vec())]);
    }

    #[test]
    fn ctrl_c_cancels_and_ctrl_u_clears() {
        let mut editor = LineEditor::new(64);
        let mut screen = Screen::default();
        assert_eq!(feed_all(&mut editor, b"abc\x03", &mut screen), [EditEvent::Cancelled]);
        assert_eq!(feed_all(&mut editor, b"xyz\x15ok\r", &mut screen), [EditEvent::Line(b"ok".to_vec())]);
        assert!(screen.0.windows(4).any(|window| window == b"^C\r\n"));
    }

    #[test]
    fn escape_sequences_are_swallowed() {
        let mut editor = LineEditor::new(64);
        let mut screen = Screen::default();
        let events = feed_all(&mut editor, b"a\x1b[A\x1b[1;5Cb\x1bOc\r", &mut screen);
        // ESC O is a two-byte sequence; the `c` after it is kept.
        assert_eq!(events, [EditEvent::Line(b"abc".to_vec())]);
    }

    #[test]
    fn enter_and_ctrl_c_end_an_unfinished_escape_sequence() {
        let mut editor = LineEditor::new(64);
        let mut screen = Screen::default();
        assert_eq!(feed_all(&mut editor, b"ab\x1b[12\r", &mut screen), [EditEvent::Line(b"ab".to_vec())]);
        assert_eq!(
            feed_all(&mut editor, b"\x1b\x03echo\r", &mut screen),
            [EditEvent::Cancelled, EditEvent::Line(b"echo".to_vec())]
        );
    }

    #[test]
    fn control_bytes_are_kept_and_echoed_in_caret_notation() {
        let mut editor = LineEditor::new(64);
        let mut screen = Screen::default();
        let events = feed_all(&mut editor, b"a\x07b\r", &mut screen);
        assert_eq!(events, [EditEvent::Line(b"a\x07b".to_vec())]);
        assert_eq!(screen.0, b"a^Gb\r\n");
    }

    #[test]
    fn four_kibibyte_line_is_too_long_with_exact_length() {
        let mut editor = LineEditor::new(1024);
        let mut screen = Screen::default();
        let mut line = alloc::vec![b'x'; 4096];
        line.push(b'\r');
        assert_eq!(feed_all(&mut editor, &line, &mut screen), [EditEvent::TooLong { length: 4096 }]);
        assert_eq!(screen.0.len(), 1024 + 2, "nothing past the limit is echoed");
        assert_eq!(feed_all(&mut editor, b"ok\r", &mut screen), [EditEvent::Line(b"ok".to_vec())]);
    }
}
