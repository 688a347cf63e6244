//! Checks real API responses against `schemas/api.openapi.yaml`: the YAML is read
//! into JSON values (saphyr's event parser) and responses are validated with a
//! small structural checker (`$ref`, `type`, `required`, `properties`,
//! `additionalProperties`, `items`, `enum`, `minimum`).

use std::path::{Path, PathBuf};

use saphyr_parser::{Event, Parser, ScalarStyle};
use serde_json::{Map, Number, Value};

use crate::http::HttpResponse;

/// The daemon's OpenAPI document in the repository.
pub fn default_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/api.openapi.yaml")
}

/// Parses YAML (no anchors, one document) into a JSON value; plain scalars become
/// null, booleans or numbers when they look like one, quoted scalars stay strings.
pub fn yaml_to_json(text: &str) -> Result<Value, String> {
    enum Frame {
        Seq(Vec<Value>),
        Map(Map<String, Value>, Option<String>),
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut root = None;
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| format!("YAML: {e}"))?;
        let value = match event {
            Event::Scalar(s, style, _, _) => Some(scalar(&s, style)),
            Event::SequenceStart(..) => {
                stack.push(Frame::Seq(Vec::new()));
                None
            }
            Event::MappingStart(..) => {
                stack.push(Frame::Map(Map::new(), None));
                None
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq(v)) => Some(Value::Array(v)),
                _ => return Err(format!("YAML: unbalanced sequence at {span:?}")),
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map(m, None)) => Some(Value::Object(m)),
                _ => return Err(format!("YAML: unbalanced mapping at {span:?}")),
            },
            Event::Alias(_) => return Err("YAML: aliases are not supported".into()),
            _ => None,
        };
        let Some(value) = value else { continue };
        match stack.last_mut() {
            None => root = Some(value),
            Some(Frame::Seq(v)) => v.push(value),
            Some(Frame::Map(m, key)) => match key.take() {
                None => match value {
                    Value::String(k) => *key = Some(k),
                    other => *key = Some(other.to_string()),
                },
                Some(k) => {
                    m.insert(k, value);
                }
            },
        }
    }
    root.ok_or_else(|| "YAML: empty document".to_string())
}

fn scalar(s: &str, style: ScalarStyle) -> Value {
    if style != ScalarStyle::Plain {
        return Value::String(s.to_string());
    }
    match s {
        "null" | "~" | "" => Value::Null,
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => {
            if let Ok(i) = s.parse::<i64>() {
                Value::Number(i.into())
            } else if let Some(n) = s.parse::<f64>().ok().and_then(Number::from_f64) {
                Value::Number(n)
            } else {
                Value::String(s.to_string())
            }
        }
    }
}

/// A loaded OpenAPI document.
pub struct OpenApi {
    doc: Value,
}

impl OpenApi {
    /// Loads and parses the document at `path`.
    pub fn load(path: &Path) -> OpenApi {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let doc = yaml_to_json(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        OpenApi { doc }
    }

    /// The parsed document.
    pub fn doc(&self) -> &Value {
        &self.doc
    }

    /// Every `(method, path)` the document declares, sorted.
    pub fn operations(&self) -> Vec<(String, String)> {
        let mut ops = Vec::new();
        if let Some(paths) = self.doc["paths"].as_object() {
            for (path, item) in paths {
                for method in item.as_object().into_iter().flat_map(|m| m.keys()) {
                    ops.push((method.to_uppercase(), path.clone()));
                }
            }
        }
        ops.sort();
        ops
    }

    /// Validates a real response to `method path` (the path without its query)
    /// against the documented response for its status and content type. For
    /// `application/x-ndjson`, every line is validated against the schema.
    pub fn check(&self, method: &str, path: &str, resp: &HttpResponse) -> Result<(), String> {
        let item = self.path_item(path)?;
        let op = &item[method.to_lowercase()];
        if op.is_null() {
            return Err(format!("{method} {path} is not documented"));
        }
        let mut response = &op["responses"][resp.status.to_string()];
        if response.is_null() && resp.status >= 400 {
            response = &op["responses"]["default"];
        }
        if response.is_null() {
            return Err(format!(
                "{method} {path}: status {} is not documented",
                resp.status
            ));
        }
        let media = resp.content_type.split(';').next().unwrap_or("").trim();
        let schema = &response["content"][media]["schema"];
        if schema.is_null() {
            return Err(format!(
                "{method} {path} {}: content type {media:?} is not documented",
                resp.status
            ));
        }
        let documents: Vec<&str> = if media == "application/x-ndjson" {
            resp.body.lines().collect()
        } else {
            vec![resp.body.as_str()]
        };
        let mut errors = Vec::new();
        for (i, text) in documents.iter().enumerate() {
            match serde_json::from_str::<Value>(text) {
                Ok(v) => self.validate(schema, &v, &format!("#{i}"), &mut errors),
                Err(e) => errors.push(format!("#{i}: not JSON ({e}): {text}")),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{method} {path} {}: {}",
                resp.status,
                errors.join("; ")
            ))
        }
    }

    fn path_item(&self, path: &str) -> Result<&Value, String> {
        let paths = self.doc["paths"]
            .as_object()
            .ok_or("no paths in the document")?;
        let segs: Vec<&str> = path.split('/').collect();
        paths
            .iter()
            .find(|(template, _)| {
                let t: Vec<&str> = template.split('/').collect();
                t.len() == segs.len()
                    && t.iter()
                        .zip(&segs)
                        .all(|(t, s)| t == s || (t.starts_with('{') && t.ends_with('}')))
            })
            .map(|(_, item)| item)
            .ok_or_else(|| format!("path {path} is not documented"))
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema["$ref"].as_str() {
            Some(r) => {
                let pointer = r.trim_start_matches('#');
                self.doc.pointer(pointer).unwrap_or(&Value::Null)
            }
            None => schema,
        }
    }

    /// Appends to `errors` every way `value` (at `at`) does not fit `schema`.
    pub fn validate(&self, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
        let schema = self.resolve(schema);
        if schema.is_null() {
            errors.push(format!("{at}: unresolvable schema"));
            return;
        }
        if let Some(ty) = schema["type"].as_str() {
            let ok = match ty {
                "object" => value.is_object(),
                "array" => value.is_array(),
                "string" => value.is_string(),
                "integer" => value.is_i64() || value.is_u64(),
                "number" => value.is_number(),
                "boolean" => value.is_boolean(),
                "null" => value.is_null(),
                _ => false,
            };
            if !ok {
                errors.push(format!("{at}: expected {ty}, got {value}"));
                return;
            }
        }
        if let Some(allowed) = schema["enum"].as_array()
            && !allowed.contains(value)
        {
            errors.push(format!("{at}: {value} is not one of {allowed:?}"));
        }
        if let (Some(min), Some(v)) = (schema["minimum"].as_f64(), value.as_f64())
            && v < min
        {
            errors.push(format!("{at}: {v} is below the minimum {min}"));
        }
        if let Some(obj) = value.as_object() {
            for req in schema["required"].as_array().into_iter().flatten() {
                if let Some(k) = req.as_str()
                    && !obj.contains_key(k)
                {
                    errors.push(format!("{at}: missing required field {k:?}"));
                }
            }
            let props = schema["properties"].as_object();
            for (k, v) in obj {
                let sub = format!("{at}.{k}");
                match props.and_then(|p| p.get(k)) {
                    Some(s) => self.validate(s, v, &sub, errors),
                    None => match &schema["additionalProperties"] {
                        Value::Bool(false) => errors.push(format!("{sub}: not allowed")),
                        s @ Value::Object(_) => self.validate(s, v, &sub, errors),
                        _ => {}
                    },
                }
            }
        }
        if let (Some(items), Some(arr)) = (schema.get("items"), value.as_array()) {
            for (i, v) in arr.iter().enumerate() {
                self.validate(items, v, &format!("{at}[{i}]"), errors);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_subset_becomes_json() {
        let v =
            yaml_to_json("a: 1\nb: [x, \"2\", true]\nc:\n  d: ~\n  e: 1.5\n\"200\":\n  - k: v\n")
                .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a": 1, "b": ["x", "2", true], "c": {"d": null, "e": 1.5},
                "200": [{"k": "v"}]})
        );
    }

    #[test]
    fn validator_reports_missing_and_mistyped_fields() {
        let api = OpenApi {
            doc: serde_json::json!({"components": {"schemas": {"T": {
                "type": "object", "required": ["a", "b"],
                "properties": {"a": {"type": "integer", "minimum": 1},
                               "b": {"type": "string", "enum": ["x"]}},
                "additionalProperties": false}}}}),
        };
        let schema = serde_json::json!({"$ref": "#/components/schemas/T"});
        let mut errors = Vec::new();
        api.validate(
            &schema,
            &serde_json::json!({"a": 1, "b": "x"}),
            "$",
            &mut errors,
        );
        assert_eq!(errors, Vec::<String>::new());
        api.validate(
            &schema,
            &serde_json::json!({"a": 0, "c": 1}),
            "$",
            &mut errors,
        );
        assert_eq!(
            errors,
            [
                "$: missing required field \"b\"",
                "$.a: 0 is below the minimum 1",
                "$.c: not allowed"
            ]
        );
        errors.clear();
        api.validate(
            &schema,
            &serde_json::json!({"a": "1", "b": "y"}),
            "$",
            &mut errors,
        );
        assert_eq!(errors.len(), 2, "{errors:?}");
    }

    #[test]
    fn the_daemon_api_document_parses_and_declares_its_routes() {
        let api = OpenApi::load(&default_path());
        assert_eq!(api.doc()["openapi"], "3.1.0");
        assert_eq!(
            api.operations(),
            [
                ("DELETE", "/v1/containers/{id}"),
                ("DELETE", "/v1/networks/{name}"),
                ("GET", "/v1/containers"),
                ("GET", "/v1/containers/{id}"),
                ("GET", "/v1/containers/{id}/archive"),
                ("GET", "/v1/containers/{id}/changes"),
                ("GET", "/v1/containers/{id}/logs"),
                ("GET", "/v1/containers/{id}/port"),
                ("GET", "/v1/containers/{id}/stats"),
                ("GET", "/v1/containers/{id}/top"),
                ("GET", "/v1/events"),
                ("GET", "/v1/info"),
                ("GET", "/v1/networks"),
                ("GET", "/v1/networks/{name}"),
                ("GET", "/v1/stacks"),
                ("GET", "/v1/stacks/{name}/ps"),
                ("GET", "/v1/version"),
                ("POST", "/v1/containers"),
                ("POST", "/v1/containers/{id}/commit"),
                ("POST", "/v1/containers/{id}/kill"),
                ("POST", "/v1/containers/{id}/pause"),
                ("POST", "/v1/containers/{id}/restart"),
                ("POST", "/v1/containers/{id}/start"),
                ("POST", "/v1/containers/{id}/stop"),
                ("POST", "/v1/containers/{id}/unpause"),
                ("POST", "/v1/containers/{id}/wait"),
                ("POST", "/v1/networks"),
                ("POST", "/v1/networks/prune"),
                ("POST", "/v1/networks/{name}/connect"),
                ("POST", "/v1/networks/{name}/disconnect"),
                ("POST", "/v1/shutdown"),
                ("POST", "/v1/stacks/{name}/down"),
                ("POST", "/v1/stacks/{name}/up"),
                ("POST", "/v1/stacks/{name}/watch"),
                ("POST", "/v1/stacks/{name}/{action}"),
                ("PUT", "/v1/containers/{id}/archive"),
            ]
            .map(|(m, p)| (m.to_string(), p.to_string()))
        );
    }
}
