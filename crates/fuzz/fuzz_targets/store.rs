#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mqtts_core_fuzz::store::run(data));
