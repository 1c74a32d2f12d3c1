//! The log entry parser: any bytes either parse or are a `CorruptLog`, and an entry that
//! parses names only paths inside the dataset and writes back to JSON that parses equal.
#![no_main]

use dala_dataset::Commit;
use dala_dataset::layout::check_relative_path;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    // The version the entry claims, so that the checks after it are reached too.
    let version = serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v.get("version")?.as_u64())
        .unwrap_or(0);
    let Ok(commit) = Commit::parse(bytes, version, "_dala/fuzz.json") else {
        return;
    };
    for add in &commit.add {
        assert!(check_relative_path(&add.path).is_ok(), "{:?}", add.path);
    }
    let written = serde_json::to_vec(&commit).expect("a parsed entry serializes");
    let again = Commit::parse(&written, version, "_dala/fuzz.json").expect("and parses again");
    assert_eq!(again, commit);
});
