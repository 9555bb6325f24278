use std::path::Path;

use super::*;

const MINIMAL: &str = r#"
[paths]
spool = "s"
cache = "c"
catalog = "k"
log = "l"
"#;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("pipeline.toml"), Path::new("/etc/reel"))
}

/// The error for `text`, which must fail.
fn error(text: &str) -> ConfigError {
    match parse(text) {
        Ok(c) => panic!("should fail: {text}\nparsed as {c:?}"),
        Err(e) => e,
    }
}

#[test]
fn the_repository_default_loads() {
    let c = parse(DEFAULT_CONFIG).unwrap();
    assert_eq!(c.paths.spool, Path::new("/etc/reel/var/spool"));
    assert_eq!(c.streams[0].name, "sample");
    assert_eq!(
        c.streams[0].source,
        Source::Local("/etc/reel/var/sample".into())
    );
    assert_eq!(
        c.drives[0].device,
        Device::Virtual {
            dir: "/etc/reel/var/library".into(),
            drive: 0
        }
    );
    assert_eq!(c.drives[0].block_size, Size(256 << 10));
    assert_eq!(c.archive_size(), Size(64 << 20));
}

#[test]
fn defaults_fill_what_is_left_out() {
    let c = parse(MINIMAL).unwrap();
    assert!(c.streams.is_empty());
    assert_eq!(c.cache.high_water, Water::Percent(Percent::new(90)));
    assert_eq!(c.verify.when, VerifyWhen::Archive);
    assert_eq!(c.verify.level, VerifyLevel::Full);
    assert_eq!(c.archive_size(), Size(360_000_000_000));
    assert_eq!(c.supervisor.retry.attempts, 5);
    assert_eq!(c.dir_mode(), 0o700);
}

#[test]
fn errors_name_line_and_key() {
    // (config text, line, key, part of the message)
    let cases: &[(&str, usize, &str, &str)] = &[
        (
            "[[pool]]\nname = \"vault\"\nretire_after_loads = 0\n",
            9,
            "pool[0].retire_after_loads",
            "would retire every tape at once",
        ),
        (
            "[cache]\nhig_water = \"90%\"\n",
            8,
            "cache.hig_water",
            "unknown field `hig_water`",
        ),
        (
            "[cache]\nlow_water = \"95%\"\n",
            8,
            "cache.low_water",
            "must be below high_water",
        ),
        (
            "[cache]\nbundle_below = \"1G\"\n",
            8,
            "cache.bundle_below",
            "is at most 64M",
        ),
        (
            "[cache]\nhigh_water = 90\n",
            8,
            "cache.high_water",
            "invalid type",
        ),
        (
            "[[drive]]\nname = \"d\"\ndevice = \"/dev/nst0\"\nblock_size = \"1000\"\n",
            10,
            "drive[0].block_size",
            "not a multiple of 512",
        ),
        (
            "[[drive]]\nname = \"a\"\ndevice = \"/dev/nst0\"\n\
             [[drive]]\nname = \"b\"\ndevice = \"/dev/nst1\"\nblock_size = \"512K\"\n",
            13,
            "drive[1].block_size",
            "every [[drive]] must have the same block_size",
        ),
        (
            "[[drive]]\nname = \"d\"\ndevice = \"nst0\"\n",
            9,
            "drive[0].device",
            "expected a device path",
        ),
        (
            "[[drive]]\nname = \"d\"\ndevice = \"/dev/nst0\"\nchanger = \"x\"\n",
            10,
            "drive[0].changer",
            "no [[changer]]",
        ),
        (
            "[[drive]]\nname = \"d\"\ndevice = \"/dev/nst0\"\nelement = 1\n",
            10,
            "drive[0].element",
            "element needs a changer",
        ),
        (
            "[[changer]]\nname = \"lib\"\ndevice = \"/dev/sg3\"\n\
             [[drive]]\nname = \"a\"\ndevice = \"/dev/nst0\"\nchanger = \"lib\"\n\
             [[drive]]\nname = \"b\"\ndevice = \"/dev/nst1\"\nchanger = \"lib\"\n",
            14,
            "drive[1].element",
            "is element 0 of changer \"lib\", as drive \"a\" is",
        ),
        (
            "[pack]\narchive_size = \"2T\"\n[[drive]]\nname = \"d\"\ndevice = \"/dev/nst0\"\ncapacity = \"1T\"\n",
            8,
            "pack.archive_size",
            "larger than a tape",
        ),
        (
            "[[stream]]\nname = \"a b\"\nsource = \"/data\"\n",
            8,
            "stream[0].name",
            "must be letters",
        ),
        (
            "[[stream]]\nname = \"home\"\nsource = \"/data\"\nmin_age = \"10\"\n",
            10,
            "stream[0].min_age",
            "a unit is missing",
        ),
        (
            "[[stream]]\nname = \"home\"\nsource = \"/data\"\nexclude = [\"a[\"]\n",
            10,
            "stream[0].exclude[0]",
            "bad glob",
        ),
        (
            "[verify]\nwhen = \"sometimes\"\n",
            8,
            "verify.when",
            "unknown variant `sometimes`",
        ),
        (
            "[supervisor]\nretry = { attempts = -1 }\n",
            8,
            "supervisor.retry.attempts",
            "invalid value",
        ),
    ];
    for (extra, line, key, message) in cases {
        let text = format!("{MINIMAL}{extra}");
        let e = error(&text);
        assert_eq!(e.line, Some(*line), "line for {extra:?}: {e}");
        assert_eq!(e.key.as_deref(), Some(*key), "key for {extra:?}: {e}");
        assert!(
            e.message.contains(message),
            "{e} should contain {message:?}"
        );
        let shown = e.to_string();
        assert!(!shown.contains('\n'), "one line: {shown:?}");
        assert!(
            shown.starts_with(&format!("pipeline.toml:{line}: {key}: ")),
            "{shown}"
        );
    }
}

#[test]
fn cache_inside_a_source_is_refused() {
    let text = r#"
[paths]
spool = "/srv/spool"
cache = "/data/cache"
catalog = "/srv/catalog"
log = "/srv/log"

[[stream]]
name = "data"
source = "/data"
"#;
    let e = error(text);
    assert_eq!(e.key.as_deref(), Some("paths.cache"));
    assert_eq!(e.line, Some(4));
    assert!(e.message.contains("inside the source /data"), "{e}");
}

#[test]
fn syntax_errors_give_a_line() {
    let e = error("[paths\nspool = 1\n");
    assert_eq!(e.line, Some(1));
    assert!(e.message.starts_with("syntax error"), "{e}");
    assert!(!e.to_string().contains('\n'));
}

#[test]
fn missing_sections_are_named() {
    let e = error("[cache]\n");
    assert!(e.message.contains("missing field `paths`"), "{e}");
    let e = error("[paths]\nspool = \"s\"\n");
    assert!(e.message.contains("missing field `cache`"), "{e}");
    assert_eq!(e.key.as_deref(), Some("paths"), "{e}");
}

#[test]
fn lookup_order() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.toml");
    let b = dir.path().join("b.toml");
    let c = dir.path().join("c.toml");
    std::fs::write(&a, "").unwrap();
    std::fs::write(&b, "").unwrap();
    std::fs::write(&c, "").unwrap();
    let missing = dir.path().join("missing.toml");
    assert_eq!(locate(Some(&a), Some(&b), &[&c]).unwrap(), a);
    assert_eq!(locate(None, Some(&b), &[&c]).unwrap(), b);
    assert_eq!(locate(None, None, &[&missing, &c]).unwrap(), c);
    assert!(locate(Some(&missing), Some(&b), &[&c]).is_err());
    assert!(locate(None, Some(&missing), &[&c]).is_err());
    let e = locate(None, None, &[&missing]).unwrap_err();
    assert!(e.message.contains("no config file found"), "{e}");
}

#[test]
fn drives_of_an_sg_changer_may_leave_their_element_to_their_serial() {
    let two = "[[changer]]\nname = \"lib\"\ndevice = \"sg:/dev/sg3\"\n\
               [[drive]]\nname = \"a\"\ndevice = \"/dev/nst0\"\nchanger = \"lib\"\n\
               [[drive]]\nname = \"b\"\ndevice = \"/dev/nst1\"\nchanger = \"lib\"\n";
    let c = parse(&format!("{MINIMAL}{two}")).unwrap();
    assert_eq!(
        c.changers[0].device,
        Device::Sg(std::path::PathBuf::from("/dev/sg3"))
    );
    assert_eq!(c.changers[0].device.to_string(), "sg:/dev/sg3");
    // Named elements are still compared.
    let same = two.replace(
        "changer = \"lib\"\n[[drive]]",
        "changer = \"lib\"\nelement = 1\n[[drive]]",
    ) + "element = 1\n";
    let e = error(&format!("{MINIMAL}{same}"));
    assert!(e.to_string().contains("is element 1 of changer"), "{e}");
    assert!(
        Device::parse("sg:dev/sg3")
            .unwrap_err()
            .contains("write sg:/dev/sgN")
    );
}
