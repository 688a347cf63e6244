//! Output of the image commands: tables, JSON, times.

use berth_image::{Image, Reference};

/// Unix seconds of an RFC 3339 UTC-or-offset time (`2024-01-02T03:04:05.123Z`); `None` if
/// it does not parse.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // Howard Hinnant's days_from_civil.
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let mut secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    // A numeric offset: local time = UTC + offset.
    let rest = &s[19..];
    let rest = rest.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    if let Some(sign) = rest.chars().next().filter(|c| *c == '+' || *c == '-') {
        let oh = rest.get(1..3)?.parse::<i64>().ok()?;
        let om = rest.get(4..6)?.parse::<i64>().ok()?;
        let off = oh * 3600 + om * 60;
        secs -= if sign == '+' { off } else { -off };
    }
    Some(secs)
}

/// "3 minutes ago" style ages.
pub fn age(created: Option<&str>, now: i64) -> String {
    let Some(t) = created.and_then(parse_rfc3339) else {
        return "N/A".into();
    };
    let d = (now - t).max(0);
    let (n, unit) = match d {
        0..60 => return "Less than a minute ago".into(),
        60..3600 => (d / 60, "minute"),
        3600..86_400 => (d / 3600, "hour"),
        86_400..604_800 => (d / 86_400, "day"),
        604_800..2_592_000 => (d / 604_800, "week"),
        2_592_000..31_536_000 => (d / 2_592_000, "month"),
        _ => (d / 31_536_000, "year"),
    };
    if n == 1 {
        format!("{} {unit} ago", if unit == "hour" { "An" } else { "1" })
    } else {
        format!("{n} {unit}s ago")
    }
}

/// Current Unix time.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Repository and tag columns for one reference.
pub fn repo_tag(r: &Reference) -> (String, String) {
    let familiar = r.with_digest_removed().familiar();
    let repo = match familiar.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo.to_owned(),
        _ => familiar,
    };
    (repo, r.tag().unwrap_or("<none>").to_owned())
}

/// Rows of `berth images`: one per reference, or one `<none>` row for untagged images.
pub fn image_rows(images: &[Image]) -> Vec<(String, String, &Image)> {
    let mut rows = Vec::new();
    for image in images {
        if image.references.is_empty() {
            rows.push(("<none>".to_owned(), "<none>".to_owned(), image));
        }
        for r in &image.references {
            let (repo, tag) = repo_tag(r);
            rows.push((repo, tag, image));
        }
    }
    rows
}

/// Formats rows as left-aligned columns separated by three spaces (as `docker` does).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut push_row = |cells: Vec<&str>| {
        let last = cells.len() - 1;
        for (i, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                out.push_str(&" ".repeat(widths[i] - cell.chars().count() + 3));
            }
        }
        out.push('\n');
    };
    push_row(header.to_vec());
    for row in rows {
        push_row(row.iter().map(String::as_str).collect());
    }
    out
}

/// `docker image inspect`-like JSON for one image.
pub fn inspect_json(image: &Image) -> serde_json::Value {
    let tags: Vec<String> = image
        .references
        .iter()
        .filter(|r| r.tag().is_some())
        .map(|r| r.with_digest_removed().familiar())
        .collect();
    let mut digests: Vec<String> = image
        .references
        .iter()
        .map(|r| format!("{}@{}", r.name(), image.manifest_digest))
        .collect();
    digests.sort();
    digests.dedup();
    let c = &image.config;
    serde_json::json!({
        "Id": image.id.to_string(),
        "RepoTags": tags,
        "RepoDigests": digests,
        "ManifestDigest": image.manifest_digest.to_string(),
        "Created": c.created,
        "Author": c.author,
        "Architecture": c.architecture,
        "Os": c.os,
        "Variant": c.variant,
        "Config": c.config,
        "RootFS": { "Type": c.rootfs.kind, "Layers": c.rootfs.diff_ids },
        "Size": image.size(),
        "Snapshots": image.snapshots(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_times_and_ages() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20.5Z"), Some(1_700_000_000));
        assert_eq!(
            parse_rfc3339("2023-11-15T00:13:20+02:00"),
            Some(1_700_000_000)
        );
        assert_eq!(age(Some("1970-01-01T00:00:00Z"), 7200), "2 hours ago");
        assert_eq!(
            age(Some("1970-01-01T00:00:00Z"), 30),
            "Less than a minute ago"
        );
        assert_eq!(age(None, 0), "N/A");
    }

    #[test]
    fn table_aligns_columns() {
        let t = table(
            &["REPOSITORY", "TAG"],
            &[vec!["busybox".into(), "latest".into()]],
        );
        assert_eq!(t, "REPOSITORY   TAG\nbusybox      latest\n");
    }

    #[test]
    fn repo_and_tag_split() {
        let r = Reference::parse("localhost:5000/app:v1").unwrap();
        assert_eq!(repo_tag(&r), ("localhost:5000/app".into(), "v1".into()));
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(repo_tag(&r), ("busybox".into(), "latest".into()));
    }
}
