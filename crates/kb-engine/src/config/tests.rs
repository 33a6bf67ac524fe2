use super::*;

fn endpoint(name: &str, base_url: &str) -> EndpointConfig {
    EndpointConfig {
        name: name.to_owned(),
        base_url: base_url.to_owned(),
        embed_model: Some("e5".to_owned()),
        ..EndpointConfig::default()
    }
}

#[test]
fn defaults_are_valid_and_match_the_documented_values() {
    // Act
    let config = EngineConfig::default();

    // Assert
    assert!(config.validate().is_ok());
    assert_eq!(config.retry.max_attempts, 5);
    assert_eq!(config.retry.base_delay_ms, 200);
    assert_eq!(config.retry.max_delay_ms, 10_000);
    assert_eq!(config.retry.deadline_ms, 60_000);
    assert_eq!(config.timeouts.connect_ms, 5_000);
    assert_eq!(EndpointConfig::default().weight, 1);
    assert_eq!(EndpointConfig::default().requests_per_minute, None);
    assert_eq!(EndpointConfig::default().tokens_per_minute, None);
    assert_eq!(config.breaker.failures, 5);
    assert_eq!(config.breaker.cooldown_ms, 30_000);
}

#[test]
fn zero_budgets_and_breaker_values_are_refused() {
    // Arrange
    let with = |change: &dyn Fn(&mut EngineConfig)| {
        let mut config = EngineConfig {
            endpoints: vec![endpoint("a", "http://127.0.0.1:1/v1")],
            ..EngineConfig::default()
        };
        change(&mut config);
        config.validate().unwrap_err().to_string()
    };

    // Act
    let rpm = with(&|c| c.endpoints[0].requests_per_minute = Some(0));
    let tpm = with(&|c| c.endpoints[0].tokens_per_minute = Some(0));
    let failures = with(&|c| c.breaker.failures = 0);
    let cooldown = with(&|c| c.breaker.cooldown_ms = 0);

    // Assert
    assert_eq!(
        rpm,
        "engine.endpoints[0].requests_per_minute: must be at least 1 when set"
    );
    assert_eq!(
        tpm,
        "engine.endpoints[0].tokens_per_minute: must be at least 1 when set"
    );
    assert_eq!(failures, "engine.breaker.failures: must be at least 1");
    assert_eq!(cooldown, "engine.breaker.cooldown_ms: must be above 0");
}

#[test]
fn invalid_base_url_names_the_key() {
    // Arrange
    let config = EngineConfig {
        endpoints: vec![endpoint("a", "not a url")],
        ..EngineConfig::default()
    };

    // Act
    let err = config.validate().unwrap_err().to_string();

    // Assert
    assert!(
        err.starts_with("engine.endpoints[0].base_url: not a valid URL"),
        "{err}"
    );
}

#[test]
fn duplicate_endpoint_names_are_refused() {
    // Arrange
    let config = EngineConfig {
        endpoints: vec![
            endpoint("a", "http://127.0.0.1:1/v1"),
            endpoint("a", "http://127.0.0.1:2/v1"),
        ],
        ..EngineConfig::default()
    };

    // Act
    let err = config.validate().unwrap_err().to_string();

    // Assert
    assert!(err.starts_with("engine.endpoints[1].name:"), "{err}");
}

#[test]
fn zero_weight_and_zero_attempts_are_refused() {
    // Arrange
    let mut zero_weight = EngineConfig {
        endpoints: vec![endpoint("a", "http://127.0.0.1:1/v1")],
        ..EngineConfig::default()
    };
    zero_weight.endpoints[0].weight = 0;
    let mut zero_attempts = EngineConfig::default();
    zero_attempts.retry.max_attempts = 0;

    // Act
    let weight_err = zero_weight.validate().unwrap_err().to_string();
    let attempts_err = zero_attempts.validate().unwrap_err().to_string();

    // Assert
    assert_eq!(weight_err, "engine.endpoints[0].weight: must be at least 1");
    assert_eq!(
        attempts_err,
        "engine.retry.max_attempts: must be at least 1"
    );
}

#[test]
fn blank_api_key_is_refused_without_showing_it() {
    // Arrange
    let mut config = EngineConfig {
        endpoints: vec![endpoint("a", "http://127.0.0.1:1/v1")],
        ..EngineConfig::default()
    };
    config.endpoints[0].api_keys = vec!["sk-good".into(), "sk bad".into()];

    // Act
    let err = config.validate().unwrap_err().to_string();

    // Assert
    assert!(err.starts_with("engine.endpoints[0].api_keys[1]:"), "{err}");
    assert!(!err.contains("sk"), "{err}");
}

#[test]
fn serialised_config_redacts_api_keys() {
    // Arrange
    let mut config = EngineConfig {
        endpoints: vec![endpoint("a", "http://127.0.0.1:1/v1")],
        ..EngineConfig::default()
    };
    config.endpoints[0].api_keys = vec!["sk-very-secret".into()];

    // Act
    let json = serde_json::to_string(&config).unwrap();

    // Assert
    assert!(!json.contains("sk-very-secret"), "{json}");
    assert!(json.contains(REDACTED), "{json}");
}

#[test]
fn unknown_keys_are_refused_and_missing_keys_take_defaults() {
    // Arrange
    let known = r#"{"endpoints": [{"name": "a", "base_url": "http://h/v1", "requests_per_minute": 60}],
        "retry": {"max_attempts": 2}, "breaker": {"failures": 3}}"#;
    let unknown = r#"{"retry": {"max_attempt": 2}}"#;
    let unknown_breaker = r#"{"breaker": {"cooldown": 2}}"#;

    // Act
    let config: EngineConfig = serde_json::from_str(known).unwrap();
    let refused = serde_json::from_str::<EngineConfig>(unknown);
    let refused_breaker = serde_json::from_str::<EngineConfig>(unknown_breaker);

    // Assert
    assert_eq!(config.endpoints[0].weight, 1);
    assert_eq!(config.retry.max_attempts, 2);
    assert_eq!(config.retry.base_delay_ms, 200);
    assert_eq!(config.endpoints[0].requests_per_minute, Some(60));
    assert_eq!(config.endpoints[0].tokens_per_minute, None);
    assert_eq!(config.breaker.failures, 3);
    assert_eq!(config.breaker.cooldown_ms, 30_000);
    assert!(refused.is_err());
    assert!(refused_breaker.is_err());
}

#[test]
fn logical_names_map_to_each_endpoints_own_model_id() {
    // Arrange
    let mut openai = endpoint("openai", "https://api.openai.com/v1");
    openai.embed_model = Some("text-embedding-3-small".to_owned());
    openai.chat_model = Some("gpt-4o-mini".to_owned());
    openai.models = BTreeMap::from([("smart".to_owned(), "gpt-4o".to_owned())]);
    let mut vllm = endpoint("vllm", "http://10.0.0.5:8000/v1");
    vllm.embed_model = None;
    vllm.models = BTreeMap::from([("smart".to_owned(), "Qwen2.5-72B".to_owned())]);

    // Act + Assert
    assert_eq!(
        openai.model_for("embed").as_deref(),
        Some("text-embedding-3-small")
    );
    assert_eq!(openai.model_for("chat").as_deref(), Some("gpt-4o-mini"));
    assert_eq!(openai.model_for("smart").as_deref(), Some("gpt-4o"));
    assert_eq!(vllm.model_for("smart").as_deref(), Some("Qwen2.5-72B"));
    assert_eq!(vllm.model_for("chat"), None);
    assert_eq!(vllm.model_for("embed"), None);
}

#[test]
fn a_model_id_is_served_as_itself() {
    // Arrange
    let mut e = endpoint("a", "http://127.0.0.1:1/v1");
    e.models = BTreeMap::from([("smart".to_owned(), "gpt-4o".to_owned())]);

    // Act + Assert
    assert_eq!(e.model_for("gpt-4o").as_deref(), Some("gpt-4o"));
    assert_eq!(e.model_for("e5").as_deref(), Some("e5"));
    assert_eq!(e.model_for("gpt-4o-mini"), None);
}

#[test]
fn an_alias_no_endpoint_serves_is_an_error_naming_the_setting() {
    // Arrange
    let mut e = endpoint("a", "http://127.0.0.1:1/v1");
    e.models = BTreeMap::from([("smart".to_owned(), "gpt-4o".to_owned())]);
    let config = EngineConfig {
        endpoints: vec![e],
        ..EngineConfig::default()
    };

    // Act
    let served = config.check_served("chat.model", "smart");
    let unknown = config
        .check_served("chat.model", "fast")
        .unwrap_err()
        .to_string();
    let chat = config
        .check_served("chat.model", "chat")
        .unwrap_err()
        .to_string();

    // Assert
    assert!(served.is_ok());
    assert_eq!(
        unknown,
        "chat.model: no engine endpoint serves the model \"fast\"; map it on an endpoint: models.fast = \"<model id>\""
    );
    assert_eq!(
        chat,
        "chat.model: no engine endpoint serves the model \"chat\"; set chat_model on an endpoint"
    );
}

#[test]
fn empty_or_shadowing_model_names_are_refused() {
    // Arrange
    let with = |name: &str, id: &str| {
        let mut e = endpoint("a", "http://127.0.0.1:1/v1");
        e.models = BTreeMap::from([(name.to_owned(), id.to_owned())]);
        EngineConfig {
            endpoints: vec![e],
            ..EngineConfig::default()
        }
        .validate()
        .unwrap_err()
        .to_string()
    };

    // Act + Assert
    assert_eq!(
        with("smart", " "),
        "engine.endpoints[0].models.smart: must not be empty"
    );
    assert_eq!(
        with("", "gpt-4o"),
        "engine.endpoints[0].models: a model name must not be empty"
    );
    assert_eq!(
        with("chat", "gpt-4o"),
        "engine.endpoints[0].models.chat: set chat_model instead (it is the model of \"chat\")"
    );
}

#[test]
fn models_parse_from_a_table_of_names() {
    // Arrange
    let json = r#"{"endpoints": [{"name": "a", "base_url": "http://h/v1",
        "models": {"smart": "gpt-4o", "fast": "gpt-4o-mini"}}]}"#;

    // Act
    let config: EngineConfig = serde_json::from_str(json).unwrap();

    // Assert
    assert!(config.validate().is_ok());
    assert!(config.serves("fast"));
    assert!(!config.serves("embed"));
}
