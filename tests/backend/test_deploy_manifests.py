"""deploy/: the scaled shape for a cluster, checked without a cluster.

* deploy/compose.yaml against the Compose Specification's JSON schema (vendored in deploy/schemas,
  its source and sha256 recorded in deploy/schemas/SOURCE.md; nothing is downloaded);
* deploy/k8s/*.yaml against Kubernetes' own schemas, strict (unknown keys are errors), as bundled
  in the kubernetes-validate package;
* what a schema cannot see: every setting named is one the processes read (a misspelt variable is
  silently ignored otherwise), probes on the processes' real health URLs, secrets referenced and
  never committed, the routers' nginx configuration the one `make run-scaled` uses.
The negative cases prove each check fails on a misspelt key.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from scripts.scaled import DEPLOY_NGINX, DEPLOY_NGINX_FILES, nginx_config

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
K8S_VERSION = "1.30"
# Read by a process but not from .env.example: Rasa's lock lifetime (read by Rasa itself), the
# containers' own address for Rasa (bot/launch.py), the home directory of a non-root container, and
# the PostgreSQL image's password.
EXTRA_SETTINGS = {"TICKET_LOCK_LIFETIME", "RASA_HOST", "HOME", "POSTGRES_PASSWORD", "POSTGRES_DB"}


def settings_known() -> set[str]:
    names = set()
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        if re.match(r"^[A-Z][A-Z0-9_]*=", line):
            names.add(line.split("=", 1)[0])
    return names | EXTRA_SETTINGS


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


def compose_errors(doc: dict) -> list[str]:
    schema = json.loads((DEPLOY / "schemas" / "compose-spec.json").read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def k8s_documents() -> list[tuple[str, dict]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                docs.append((path.name, doc))
    return docs


def k8s_error(doc: dict) -> str | None:
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return f"{'.'.join(map(str, exc.path))}: {exc.message}"
    except kubernetes_validate.SchemaNotFoundError as exc:
        return exc.message
    return None


def pod_containers(doc: dict) -> list[dict]:
    spec = doc.get("spec", {})
    template = spec.get("template") or spec.get("jobTemplate", {}).get("spec", {}).get("template") or {}
    return template.get("spec", {}).get("containers", [])


# --------------------------------------------------------------------------- compose

def test_the_vendored_compose_schema_is_the_recorded_one():
    recorded = re.search(r"sha256 \| `([0-9a-f]{64})`", (DEPLOY / "schemas" / "SOURCE.md").read_text(encoding="utf-8"))
    data = (DEPLOY / "schemas" / "compose-spec.json").read_bytes()
    assert recorded and hashlib.sha256(data).hexdigest() == recorded.group(1)


def test_compose_file_is_valid_against_the_compose_specification():
    assert compose_errors(compose()) == []


@pytest.mark.parametrize("where, misspelt", [
    (("services", "rasa-1"), "healtcheck"),
    (("services", "backend"), "enviroment"),
    ((), "service"),
])
def test_compose_check_fails_on_a_misspelt_key(where, misspelt):
    doc = copy.deepcopy(compose())
    target = doc
    for key in where:
        target = target[key]
    target[misspelt] = {"test": ["CMD", "true"]} if misspelt == "healtcheck" else {}
    errors = compose_errors(doc)
    assert len(errors) == 1 and misspelt in errors[0], errors


def test_compose_runs_the_scaled_shape():
    services = compose()["services"]
    assert {"backend", "nginx", "scheduler", "postgres", "redis", "migrate"} <= set(services)
    assert sorted(s for s in services if s.startswith("rasa-")) == ["rasa-1", "rasa-2"]
    assert sorted(s for s in services if s.startswith("actions-")) == ["actions-1", "actions-2"]
    assert services["scheduler"]["deploy"]["replicas"] == 2
    assert "--workers" in services["backend"]["command"]
    for name in ("rasa-1", "rasa-2"):
        assert services[name]["environment"]["RASA_ENDPOINTS"] == "endpoints.scale.yml"
        assert services[name]["command"] == ["python", "-m", "bot.launch", "rasa"]


def test_compose_names_only_settings_the_processes_read_and_keeps_secrets_out():
    known = settings_known()
    services = compose()["services"]
    for name, svc in services.items():
        unknown = set(svc.get("environment") or {}) - known
        assert not unknown, f"{name}: {unknown}"
        for env_file in svc.get("env_file", []):
            assert env_file == {"path": "secrets.env", "required": True}
        assert not any(re.search(r"(SECRET|TOKEN|KEYS?|PASSWORD)$", k) for k in svc.get("environment") or {}
                       if k != "CONSOLE_COOKIE_SECURE"), name
    example = [line.split("=", 1)[0] for line in (DEPLOY / "secrets.env.example").read_text(encoding="utf-8").splitlines()
               if re.match(r"^[A-Z]", line)]
    assert set(example) <= known
    assert "secrets.env" in (DEPLOY / ".gitignore").read_text(encoding="utf-8").split()
    assert not (DEPLOY / "secrets.env").exists() or "secrets.env" not in _tracked()


def _tracked() -> str:
    import subprocess

    out = subprocess.run(["git", "ls-files", "deploy"], cwd=ROOT, capture_output=True, text=True)
    return out.stdout


def test_compose_health_checks_ask_each_process_on_its_own_address():
    services = compose()["services"]
    for name in ("actions-1", "actions-2", "rasa-1", "rasa-2"):
        svc = services[name]
        env = svc["environment"]
        host = env.get("ACTION_HOST") or env.get("RASA_HOST")
        assert svc["networks"]["internal"]["ipv4_address"] == host
        path = "/health" if name.startswith("actions") else "/"
        assert f"http://{host}:{env.get('ACTION_PORT') or env.get('RASA_PORT')}{path}'" in " ".join(svc["healthcheck"]["test"])


# --------------------------------------------------------------------------- Kubernetes

def test_kubernetes_manifests_are_valid_against_the_kubernetes_schemas():
    docs = k8s_documents()
    kinds = sorted({d["kind"] for _, d in docs})
    assert kinds == ["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "Ingress", "Job", "Namespace",
                     "PodDisruptionBudget", "Service", "StatefulSet"]
    errors = {f"{name}: {d['kind']}/{d['metadata']['name']}": k8s_error(d) for name, d in docs}
    assert {k: v for k, v in errors.items() if v} == {}


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d["spec"]["template"]["spec"]["containers"][0].update(readinesProbe={}), "readinesProbe"),
    (lambda d: d["spec"].update(replica=2), "replica"),
    (lambda d: d.update(kind="Deployments"), "Deployments"),
])
def test_kubernetes_check_fails_on_a_misspelt_key(mutate, expected):
    (backend,) = [d for _, d in k8s_documents() if d["kind"] == "Deployment" and d["metadata"]["name"] == "backend"]
    doc = copy.deepcopy(backend)
    assert k8s_error(doc) is None
    mutate(doc)
    error = k8s_error(doc)
    assert error is not None and expected in error, error


def test_every_server_is_probed_on_its_real_health_url():
    """Backend and action server: /health (backend/api/routes/health.py, actions/auth_middleware.py
    OPEN_PATHS); Rasa: / (its own root); the router: nginx's /nginx-health."""
    expected = {"backend": "/health", "actions": "/health", "rasa": "/", "nginx": "/nginx-health"}
    assert '@router.get("/health")' in (ROOT / "backend/api/routes/health.py").read_text(encoding="utf-8")
    assert 'OPEN_PATHS = frozenset({"/health"})' in (ROOT / "actions/auth_middleware.py").read_text(encoding="utf-8")
    assert 'location = /nginx-health' in (K8S / "nginx.conf").read_text(encoding="utf-8")
    probed = set()
    for _, doc in k8s_documents():
        for c in pod_containers(doc):
            if not c.get("ports"):
                continue
            probes = [c[k] for k in ("readinessProbe", "livenessProbe", "startupProbe") if k in c]
            assert {"readinessProbe", "livenessProbe"} <= set(c), c["name"]
            assert {p["httpGet"]["path"] for p in probes} == {expected[c["name"]]}, c["name"]
            assert all(p["httpGet"]["port"] == c["ports"][0]["name"] for p in probes)
            probed.add(c["name"])
    assert probed == set(expected)


def test_kubernetes_settings_are_known_and_secrets_only_referenced():
    known = settings_known()
    docs = k8s_documents()
    assert not [d for _, d in docs if d["kind"] == "Secret"], "a Secret is created from deploy/secrets.env, never committed"
    (config,) = [d for _, d in docs if d["kind"] == "ConfigMap"]
    assert set(config["data"]) <= known
    assert config["data"]["RASA_ENDPOINTS"] == "endpoints.scale.yml"
    for _, doc in docs:
        for c in pod_containers(doc):
            if c["name"] == "nginx":
                continue
            assert {"configMapRef": {"name": "loan-assistant-config"}} in c["envFrom"]
            assert {"secretRef": {"name": "loan-assistant-secrets"}} in c["envFrom"]
            assert {e["name"] for e in c.get("env", [])} <= known


def test_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    listed = set(kustomization["resources"])
    # The migration Job is applied on its own before a rollout.
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "migrate.yaml"}
    assert kustomization["configMapGenerator"] == [{"name": "rasa-router", "files": ["nginx.conf"]}]


def test_rasa_replica_names_are_the_routers_upstreams():
    (rasa,) = [d for _, d in k8s_documents() if d["kind"] == "StatefulSet"]
    names = [f"rasa-{i}.{rasa['spec']['serviceName']}.{rasa['metadata']['namespace']}.svc.cluster.local:5005"
             for i in range(rasa["spec"]["replicas"])]
    assert DEPLOY_NGINX["k8s"]["rasa"] == names


@pytest.mark.parametrize("name", sorted(DEPLOY_NGINX))
def test_deploy_nginx_configuration_is_the_generated_one(name):
    """`python -m scripts.scaled render` writes them; a hand edit would drift from `make run-scaled`."""
    assert DEPLOY_NGINX_FILES[name].read_text(encoding="utf-8") == nginx_config(**DEPLOY_NGINX[name])
