//! The pair target's check does real work: the hand-written corpus inputs
//! move the streams they describe, through loss and scripted drops.

use std::path::Path;

fn input(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus/pair")
        .join(name);
    std::fs::read(p).expect("corpus input")
}

#[test]
fn pair_64k_each_way_through_10_percent_loss_arrives_exactly() {
    let (c, s, sent) =
        utcp_wire_fuzz::pair_run(&input("hand-64k-each-way-10pct-loss")).expect("a run");
    assert_eq!((c, s), (65_535, 65_535));
    assert!(sent > 90, "{sent} segments");
}

#[test]
fn pair_scripted_handshake_drops_still_end() {
    let (c, s, _) = utcp_wire_fuzz::pair_run(&input("hand-drops-handshake")).expect("a run");
    assert_eq!((c, s), (4_096, 4_096));
}

#[test]
fn pair_20_percent_loss_small_window_arrives_exactly() {
    let (c, s, _) =
        utcp_wire_fuzz::pair_run(&input("hand-20pct-loss-small-window")).expect("a run");
    assert_eq!((c, s), (32_768, 32_768));
}
