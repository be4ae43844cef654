//! The optional `serde` feature: every address type is a bare number on the wire, so a struct
//! keeps its JSON bytes when one of its `u64` fields becomes typed. (The crate dev-depends on
//! itself with the feature on, so these tests always run.)

use smmu_addr::{DmaAddr, Iova, PhysAddr};

#[test]
fn addresses_serialise_as_bare_numbers() {
    assert_eq!(
        serde_json::to_string(&PhysAddr::new(0x8000_0000)).unwrap(),
        "2147483648"
    );
    assert_eq!(
        serde_json::to_string(&Iova::new(u64::MAX)).unwrap(),
        "18446744073709551615"
    );
    assert_eq!(serde_json::to_string(&DmaAddr::new(0)).unwrap(), "0");
}

#[test]
fn addresses_round_trip_and_match_the_u64_encoding() {
    for raw in [0, 1, 0xfff, 0x5140_0000, 0xffff_ffff_f000, u64::MAX] {
        let json = serde_json::to_string(&raw).unwrap();
        assert_eq!(serde_json::to_string(&PhysAddr::new(raw)).unwrap(), json);
        assert_eq!(
            serde_json::from_str::<PhysAddr>(&json).unwrap(),
            PhysAddr::new(raw)
        );
        assert_eq!(serde_json::from_str::<Iova>(&json).unwrap(), Iova::new(raw));
        assert_eq!(
            serde_json::from_str::<DmaAddr>(&json).unwrap(),
            DmaAddr::new(raw)
        );
    }
}

#[test]
fn a_non_number_is_rejected() {
    assert!(serde_json::from_str::<PhysAddr>("\"0x1000\"").is_err());
    assert!(serde_json::from_str::<Iova>("-1").is_err());
}
