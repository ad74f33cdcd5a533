//! Prometheus native histograms for the simulator, in the protobuf exposition
//! format (`io.prometheus.client.MetricFamily`, length-delimited) that
//! Prometheus scrapes them in.

use std::collections::BTreeMap;

use prost::Message;

/// Schema 3: each bucket is 2^(1/8) wider than the last (about 9 %).
pub const SCHEMA: i32 = 3;

/// Bucket index of `v` (> 0) at `SCHEMA`: the bucket (base^(i-1), base^i].
pub fn bucket_index(v: f64) -> i32 {
    let base_log2 = 2f64.powi(-SCHEMA); // log2(base)
    (v.log2() / base_log2).ceil() as i32
}

/// A sparse histogram: counts per bucket index, plus zero bucket, count and sum.
#[derive(Clone, Debug, Default)]
pub struct NativeHistogram {
    pub buckets: BTreeMap<i32, u64>,
    pub zero_count: u64,
    pub count: u64,
    pub sum: f64,
}

impl NativeHistogram {
    pub fn observe(&mut self, v: f64) {
        self.count += 1;
        self.sum += v;
        if v <= 1e-9 {
            self.zero_count += 1;
        } else {
            *self.buckets.entry(bucket_index(v)).or_default() += 1;
        }
    }
}

#[derive(Clone, PartialEq, Message)]
pub struct MetricFamily {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub help: String,
    #[prost(int32, tag = "3")]
    pub r#type: i32,
    #[prost(message, repeated, tag = "4")]
    pub metric: Vec<Metric>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Metric {
    #[prost(message, repeated, tag = "1")]
    pub label: Vec<LabelPair>,
    #[prost(message, optional, tag = "7")]
    pub histogram: Option<Histogram>,
}

#[derive(Clone, PartialEq, Message)]
pub struct LabelPair {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct Histogram {
    #[prost(uint64, tag = "1")]
    pub sample_count: u64,
    #[prost(double, tag = "2")]
    pub sample_sum: f64,
    #[prost(sint32, tag = "5")]
    pub schema: i32,
    #[prost(double, tag = "6")]
    pub zero_threshold: f64,
    #[prost(uint64, tag = "7")]
    pub zero_count: u64,
    #[prost(message, repeated, tag = "12")]
    pub positive_span: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "13")]
    pub positive_delta: Vec<i64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct BucketSpan {
    #[prost(sint32, tag = "1")]
    pub offset: i32,
    #[prost(uint32, tag = "2")]
    pub length: u32,
}

/// The histogram as protobuf: spans of consecutive indices, counts as deltas.
pub fn to_proto(h: &NativeHistogram) -> Histogram {
    let mut spans: Vec<BucketSpan> = Vec::new();
    let mut deltas = Vec::new();
    let (mut last_index, mut last_count): (Option<i32>, i64) = (None, 0);
    for (&i, &c) in &h.buckets {
        match last_index {
            Some(prev) if i == prev + 1 => {
                if let Some(s) = spans.last_mut() {
                    s.length += 1;
                }
            }
            Some(prev) => spans.push(BucketSpan {
                offset: i - prev - 1,
                length: 1,
            }),
            None => spans.push(BucketSpan {
                offset: i,
                length: 1,
            }),
        }
        deltas.push(c as i64 - last_count);
        last_count = c as i64;
        last_index = Some(i);
    }
    Histogram {
        sample_count: h.count,
        sample_sum: h.sum,
        schema: SCHEMA,
        zero_threshold: 1e-9,
        zero_count: h.zero_count,
        positive_span: spans,
        positive_delta: deltas,
    }
}

/// Length-delimited encoding of metric families, as Prometheus reads it.
pub fn encode(families: &[MetricFamily]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in families {
        let _ = f.encode_length_delimited(&mut out);
    }
    out
}

/// The content type Prometheus asks for and accepts.
pub const CONTENT_TYPE: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_deltas() {
        // base 2^(1/8): 1.0 is the upper bound of bucket 0, 2.0 of bucket 8.
        assert_eq!(bucket_index(1.0), 0);
        assert_eq!(bucket_index(2.0), 8);
        assert_eq!(bucket_index(1.05), 1);
        let mut h = NativeHistogram::default();
        for v in [1.0, 1.0, 1.05, 2.0, 0.0] {
            h.observe(v);
        }
        let p = to_proto(&h);
        assert_eq!(
            p.positive_span,
            vec![
                BucketSpan {
                    offset: 0,
                    length: 2
                },
                BucketSpan {
                    offset: 6,
                    length: 1
                }
            ]
        );
        assert_eq!(p.positive_delta, vec![2, -1, 0]);
        assert_eq!((p.sample_count, p.zero_count), (5, 1));
    }
}
