//! The answers of Prometheus's query API (`/api/v1/query`, `/api/v1/query_range`),
//! as serde types: the envelope, and the data of an expression query.

use std::collections::HashMap;

use serde::Deserialize;

/// The envelope of every answer: `status` with `data`, or an error.
#[derive(Debug, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Envelope {
    Success {
        data: Data,
    },
    Error {
        #[serde(rename = "errorType", default)]
        error_type: String,
        #[serde(default)]
        error: String,
    },
}

/// The result of an expression query.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
pub enum Data {
    Vector(Vec<InstantVector>),
    Matrix(Vec<RangeVector>),
    Scalar(Sample),
    /// A string result: no signal, kept only so the answer parses.
    String(serde_json::Value),
}

impl Data {
    /// The name of the result type, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Data::Vector(_) => "vector",
            Data::Matrix(_) => "matrix",
            Data::Scalar(_) => "scalar",
            Data::String(_) => "string",
        }
    }
}

/// One series at one instant.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct InstantVector {
    #[serde(default)]
    metric: HashMap<String, String>,
    /// Absent for a native-histogram sample, which no signal reads.
    #[serde(default)]
    value: Option<Sample>,
}

impl InstantVector {
    pub fn metric(&self) -> &HashMap<String, String> {
        &self.metric
    }

    /// The float sample; a histogram sample reads as NaN (missing, never 0).
    pub fn sample(&self) -> Sample {
        self.value.unwrap_or(Sample {
            timestamp: f64::NAN,
            value: f64::NAN,
        })
    }
}

/// One series over a range.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct RangeVector {
    #[serde(default)]
    metric: HashMap<String, String>,
    #[serde(default)]
    values: Vec<Sample>,
}

impl RangeVector {
    pub fn metric(&self) -> &HashMap<String, String> {
        &self.metric
    }

    pub fn samples(&self) -> &[Sample] {
        &self.values
    }
}

/// `[unix seconds, "value"]`; the value is a string so that NaN and ±Inf fit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    timestamp: f64,
    value: f64,
}

impl Sample {
    pub fn timestamp(&self) -> f64 {
        self.timestamp
    }

    pub fn value(&self) -> f64 {
        self.value
    }
}

impl<'de> Deserialize<'de> for Sample {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (timestamp, text): (f64, String) = Deserialize::deserialize(d)?;
        // Go writes +Inf, -Inf and NaN; Rust parses all three.
        let value = text.parse::<f64>().map_err(|_| {
            serde::de::Error::invalid_value(serde::de::Unexpected::Str(&text), &"a number")
        })?;
        Ok(Self { timestamp, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse() {
        let v: Envelope = serde_json::from_str(
            r#"{"status":"success","data":{"resultType":"vector","result":[
                {"metric":{"service":"api"},"value":[1700000000.5,"0.25"]},
                {"metric":{"service":"b"},"value":[1700000000.5,"NaN"]},
                {"metric":{"service":"c"},"value":[1700000000.5,"+Inf"]}]}}"#,
        )
        .unwrap();
        let Envelope::Success {
            data: Data::Vector(v),
        } = v
        else {
            panic!("{v:?}")
        };
        assert_eq!(v[0].metric()["service"], "api");
        assert_eq!(v[0].sample().value(), 0.25);
        assert_eq!(v[0].sample().timestamp(), 1700000000.5);
        assert!(v[1].sample().value().is_nan());
        assert_eq!(v[2].sample().value(), f64::INFINITY);

        let m: Envelope = serde_json::from_str(
            r#"{"status":"success","data":{"resultType":"matrix","result":[
                {"metric":{},"values":[[1,"1"],[2,"2"]]}]}}"#,
        )
        .unwrap();
        let Envelope::Success {
            data: Data::Matrix(m),
        } = m
        else {
            panic!("{m:?}")
        };
        assert_eq!(m[0].samples().len(), 2);

        let s: Envelope = serde_json::from_str(
            r#"{"status":"success","data":{"resultType":"scalar","result":[1,"3"]}}"#,
        )
        .unwrap();
        assert!(matches!(s, Envelope::Success { data: Data::Scalar(s) } if s.value() == 3.0));

        let e: Envelope = serde_json::from_str(
            r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#,
        )
        .unwrap();
        assert!(matches!(e, Envelope::Error { error_type, .. } if error_type == "bad_data"));
        assert!(serde_json::from_str::<Envelope>(r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"x"]}]}}"#).is_err());
    }
}
