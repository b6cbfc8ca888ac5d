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
    while unit < UNITS.len() - 1 && value >> (10 * (unit + 1)) > 0 {
        unit += 1;
    }
    if unit == 0 {
        return alloc::format!("{value} B");
    }
    let divisor = 1u128 << (10 * unit);
    let tenths = u128::from(value) * 10;
    let (mut quotient, remainder) = (tenths / divisor, tenths % divisor);
    if remainder * 2 > divisor || (remainder * 2 == divisor && quotient % 2 == 1) {
        quotient += 1;
    }
    alloc::format!("{}.{} {}", quotient / 10, quotient % 10, UNITS[unit])
}

/// Nanoseconds as milliseconds with three decimals.
pub fn milliseconds(nanoseconds: u64) -> String {
    alloc::format!("{}.{:03} ms", thousands(nanoseconds / 1_000_000), nanoseconds % 1_000_000 / 1_000)
}
