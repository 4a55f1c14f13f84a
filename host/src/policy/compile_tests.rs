use super::*;

#[test]
fn limits_merge_entry_over_component_over_default() {
    let (limits, quota) = merge_limits(None, None);
    assert_eq!(limits.max_uses, Limits::default().max_uses);
    assert_eq!(quota, cache::Quota { bytes: 8 * 1024 * 1024, entries: 10_000 });
    let component = LimitsFile { cache_mib: Some(2), cache_entries: Some(50), max_uses: Some(7), ..LimitsFile::default() };
    let entry = LimitsFile { cache_entries: Some(5), ..LimitsFile::default() };
    let (limits, quota) = merge_limits(Some(&entry), Some(&component));
    assert_eq!(limits.max_uses, 7);
    assert_eq!(quota, cache::Quota { bytes: 2 * 1024 * 1024, entries: 5 });
}
