use super::*;

#[test]
fn a_url_gives_address_port_and_signal() {
    assert_eq!(
        Endpoint::parse("http://10.0.2.2:4318/v1/traces"),
        Ok(Endpoint { address: [10, 0, 2, 2], port: 4318, signal: Signal::Traces })
    );
    let metrics = Endpoint::parse("http://192.168.1.255/v1/metrics").unwrap();
    assert_eq!(metrics, Endpoint { address: [192, 168, 1, 255], port: 80, signal: Signal::Metrics });
    assert_eq!(metrics.url(), "http://192.168.1.255:80/v1/metrics");
    assert_eq!(metrics.host_header(), "192.168.1.255:80");
    assert_eq!(Endpoint::parse("http://1.2.3.4:65535/v1/traces").unwrap().port, 65535);
}

#[test]
fn every_malformed_url_is_refused_with_its_own_code() {
    let cases: &[(&str, &str)] = &[
        ("https://10.0.2.2:4318/v1/traces", "unsupported-scheme"),
        ("10.0.2.2:4318/v1/traces", "unsupported-scheme"),
        ("HTTP://10.0.2.2/v1/traces", "unsupported-scheme"),
        ("http://user@10.0.2.2/v1/traces", "bad-url"),
        ("http://10.0.2.2/v1/traces?x=1", "bad-url"),
        ("http://10.0.2.2/v1/traces#top", "bad-url"),
        ("http://collector:4318/v1/traces", "host-not-ipv4"),
        ("http://10.0.2/v1/traces", "host-not-ipv4"),
        ("http://10.0.2.2.1/v1/traces", "host-not-ipv4"),
        ("http://10.0.2.256/v1/traces", "host-not-ipv4"),
        ("http://10.0.02.2/v1/traces", "host-not-ipv4"),
        ("http://-1.0.2.2/v1/traces", "host-not-ipv4"),
        ("http:///v1/traces", "host-not-ipv4"),
        ("http://0.0.0.0:4318/v1/traces", "unaddressable"),
        ("http://255.255.255.255/v1/traces", "unaddressable"),
        ("http://224.0.0.1/v1/traces", "unaddressable"),
        ("http://10.0.2.2:0/v1/traces", "bad-port"),
        ("http://10.0.2.2:65536/v1/traces", "bad-port"),
        ("http://10.0.2.2:/v1/traces", "bad-port"),
        ("http://10.0.2.2:+80/v1/traces", "bad-port"),
        ("http://10.0.2.2:4318", "bad-path"),
        ("http://10.0.2.2:4318/", "bad-path"),
        ("http://10.0.2.2:4318/v1/logs", "bad-path"),
        ("http://10.0.2.2:4318/v1/traces/", "bad-path"),
    ];
    for (url, code) in cases {
        let error = Endpoint::parse(url).expect_err(url);
        assert_eq!(error.code(), *code, "{url}: {error}");
    }
}
