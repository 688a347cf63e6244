//! The idle monitor's memory: it gives back freed heap and the clean file pages (code and
//! constant data of the binary and the C library) it touched while setting up.

use crate::sys;

/// Private, read-only file mappings of this process with no copied-on-write page: the
/// binary's code and constant data and those of the C library. Dropping their pages loses
/// nothing (they stay in the page cache and fault back in when touched).
pub(super) fn clean_file_mappings() -> Vec<(usize, usize)> {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        if let Some(rest) = line.strip_prefix("Anonymous:") {
            let anonymous: u64 = rest
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .unwrap_or(1);
            if let Some(m) = current.take()
                && anonymous == 0
            {
                out.push(m);
            }
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(range), Some(perms)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
        else {
            continue;
        };
        let path = parts.nth(3).unwrap_or("");
        let private_file = perms.ends_with('p') && !perms.contains('w') && path.starts_with('/');
        current = private_file.then_some((start, end));
    }
    out
}

/// Keeps the idle monitor small: freed heap goes back to the kernel and the clean file pages
/// touched so far leave the process.
pub(super) fn release_memory(mappings: &[(usize, usize)]) {
    sys::trim_heap();
    for &(start, end) in mappings {
        let _ = sys::drop_clean_file_pages(start, end);
    }
}

#[cfg(test)]
mod tests {
    fn rss_file_kb() -> u64 {
        let s = std::fs::read_to_string("/proc/self/status").unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix("RssFile:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    #[test]
    fn startup_memory_is_released() {
        let before = rss_file_kb();
        super::release_memory(&super::clean_file_mappings());
        let after = rss_file_kb();
        eprintln!("RssFile {before} kB -> {after} kB");
        assert!(after < before, "RssFile {before} kB -> {after} kB");
    }
}
