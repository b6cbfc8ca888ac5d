//! Number formatting for people: thousands separators, byte sizes, durations.

use alloc::string::String;

/// `1234567` as `1,234,567`.
pub fn thousands(value: u64) -> String {
    let digits = alloc::format!("{value}");
    let mut out = String::new();
    for (index, c) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes in the largest binary unit that keeps the value at or above 1, one decimal.
pub fn bytes(value: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut unit = 0;
    let mut scaled = value as f64;
    while scaled >= 1024.0 && unit < UNITS.len() - 1 {
        scaled /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        alloc::format!("{value} B")
    } else {
        alloc::format!("{scaled:.1} {}", UNITS[unit])
    }
}

/// Nanoseconds as milliseconds with three decimals.
pub fn milliseconds(nanoseconds: u64) -> String {
    alloc::format!("{}.{:03} ms", thousands(nanoseconds / 1_000_000), nanoseconds % 1_000_000 / 1_000)
}
