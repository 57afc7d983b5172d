use super::*;

#[test]
fn list_is_sorted_unique_upper_case_and_complete() {
    assert_eq!(ISO_3166_1_ALPHA2.len(), 249);
    for pair in ISO_3166_1_ALPHA2.windows(2) {
        assert!(pair[0] < pair[1], "{} !< {}", pair[0], pair[1]);
    }
    for code in ISO_3166_1_ALPHA2 {
        assert!(code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()));
        assert_eq!(
            CountryCode::parse(code).map(|c| c.to_string()).as_deref(),
            Ok(code)
        );
    }
}

#[test]
fn any_case_is_normalized() {
    for input in ["us", "US", "Us", "uS"] {
        let code = CountryCode::parse(input).expect(input);
        assert_eq!(code.as_str(), "US");
        assert_eq!(code.as_bytes(), *b"US");
    }
    assert_eq!(
        "fr".parse::<CountryCode>()
            .map(|c| c.to_string())
            .as_deref(),
        Ok("FR")
    );
}

#[test]
fn non_letters_are_a_format_error() {
    for input in ["", "U", "USA", "U1", "1U", "U ", " US", "ÜS", "u-"] {
        let err = CountryCode::parse(input).expect_err(input);
        assert!(
            matches!(err, RuleError::CountryFormat { .. }),
            "{input:?}: {err:?}"
        );
        assert!(err.to_string().contains("must be two letters"), "{err}");
    }
}

#[test]
fn unassigned_codes_are_refused() {
    for input in ["ZZ", "EU", "XK", "UK", "AP", "aa"] {
        let err = CountryCode::parse(input).expect_err(input);
        assert!(
            matches!(err, RuleError::CountryUnknown { .. }),
            "{input:?}: {err:?}"
        );
        assert!(
            err.to_string().contains("not an assigned ISO 3166-1"),
            "{err}"
        );
        assert!(err.to_string().contains(input), "{err}");
    }
}

#[test]
fn country_set() {
    let mut set = CountrySet::default();
    assert!(set.is_empty());
    let fr = CountryCode::parse("FR").unwrap();
    let zw = CountryCode::parse("ZW").unwrap();
    let ad = CountryCode::parse("AD").unwrap();
    set.insert(fr);
    set.insert(zw);
    assert!(!set.is_empty());
    assert!(set.contains(fr) && set.contains(zw) && !set.contains(ad));
}
