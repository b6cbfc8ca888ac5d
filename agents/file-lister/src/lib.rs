//! Lists `/tmp`, reads each entry and logs its size: capabilities `fs.list:/tmp`, `fs.read:/tmp/*`, `log`.
#![no_std]

use core::fmt::Write;
use sis_agent_sdk::{agent_main, Host, Level, Text};

agent_main!(main);

/// The directory listed.
const DIRECTORY: &str = "/tmp";

fn main() -> i32 {
    let mut host = Host::new();
    let mut listing = [0u8; 4096];
    let names = match host.fs_list(DIRECTORY, &mut listing) {
        Ok(names) => names,
        Err(status) => {
            let mut line = Text::<96>::new();
            let _ = write!(line, "cannot list {DIRECTORY}: {}", status.name());
            let _ = host.log(Level::Error, line.as_str());
            return 1;
        }
    };
    let mut entries = 0u32;
    let mut bytes = 0usize;
    for name in names.split(|&byte| byte == b'\n').filter(|name| !name.is_empty()) {
        let name = core::str::from_utf8(name).unwrap_or("?");
        let mut path = Text::<256>::new();
        let _ = write!(path, "{DIRECTORY}/{name}");
        let mut contents = [0u8; 4096];
        let mut line = Text::<320>::new();
        match host.fs_read(path.as_str(), &mut contents) {
            Ok(data) => {
                bytes += data.len();
                let _ = write!(line, "{} {} bytes", path.as_str(), data.len());
            }
            Err(status) => {
                let _ = write!(line, "{} {}", path.as_str(), status.name());
            }
        }
        let _ = host.log(Level::Info, line.as_str());
        entries += 1;
    }
    let mut summary = Text::<96>::new();
    let _ = write!(summary, "listed {entries} entries in {DIRECTORY}, {bytes} bytes read");
    let _ = host.log(Level::Info, summary.as_str());
    0
}
