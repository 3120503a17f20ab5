"""deploy/k8s/ without a cluster: the manifests validate against Kubernetes' own schemas
(kubernetes-validate, offline), and every probe, port, path, timing and the secret's path
agree with hc's real settings, down to running the probes against a real `hc serve` set up
with the Deployment's environment."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from hc import exits
from hc.config import PROBE, SERVE, load, parse_flags
from tests.conftest import HC, ServeFactory, free_port, run_hc
from tests.watcher_fixtures import RedisFactory

K8S = Path(__file__).parent.parent / "deploy" / "k8s"
EXEC, HTTP_GET = K8S / "deployment.yaml", K8S / "deployment-httpget.yaml"
PROBES = ("startupProbe", "livenessProbe", "readinessProbe")
MODES = {"startupProbe": "startup", "livenessProbe": "live", "readinessProbe": "ready"}
PATHS = {"startupProbe": "/startupz", "livenessProbe": "/livez", "readinessProbe": "/readyz"}


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def container(path: Path) -> dict[str, Any]:
    (deployment,) = documents(path)
    (hc,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(hc)


def env_of(path: Path) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container(path)["env"]}


@pytest.mark.parametrize("version", ["1.25.0", "latest"])
@pytest.mark.parametrize("path", sorted(K8S.glob("*.yaml")), ids=lambda p: p.name)
def test_every_manifest_validates_against_the_kubernetes_schema(path: Path,
                                                                version: str) -> None:
    wanted = kubernetes_validate.latest_version() if version == "latest" else version
    for doc in documents(path):
        kubernetes_validate.validate(doc, wanted, strict=True)


def test_the_two_deployments_differ_only_in_their_probes() -> None:
    exec_doc, http_doc = documents(EXEC)[0], documents(HTTP_GET)[0]
    for doc in (exec_doc, http_doc):
        for probe in PROBES:
            del doc["spec"]["template"]["spec"]["containers"][0][probe]
    assert exec_doc == http_doc


def test_exec_probes_run_the_probe_in_their_mode_within_the_kubelets_timeout() -> None:
    hc, env = container(EXEC), env_of(EXEC)
    for probe in PROBES:
        command = hc[probe]["exec"]["command"]
        assert command[:2] == ["/hc", "healthcheck"], command
        settings = load(PROBE, parse_flags(command[2:], PROBE), env=env)
        assert settings.mode == MODES[probe]
        # The probe ends itself first: the kubelet never has to kill it.
        assert hc[probe]["timeoutSeconds"] > settings.timeout, probe


def test_httpget_probes_ask_the_endpoint_of_their_mode_on_hcs_port() -> None:
    hc, env = container(HTTP_GET), env_of(HTTP_GET)
    ports = {port["name"]: port["containerPort"] for port in hc["ports"]}
    port = load(SERVE, env=env).port
    for probe in PROBES:
        check = hc[probe]["httpGet"]
        assert (check["path"], ports[check["port"]]) == (PATHS[probe], port), probe


def test_the_grace_period_covers_the_drain_and_the_in_flight_requests() -> None:
    for path in (EXEC, HTTP_GET):
        settings = load(SERVE, env=env_of(path))
        grace = documents(path)[0]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert settings.drain_delay >= 5  # longer than endpoints take to drop the pod
        assert grace > settings.drain_delay + settings.shutdown_timeout


def test_the_password_file_is_the_mounted_secret_readable_by_the_image_user() -> None:
    (secret,) = documents(K8S / "secret.yaml")
    pod = documents(EXEC)[0]["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    (mount,) = [m for m in container(EXEC)["volumeMounts"]
                if "secret" in volumes[m["name"]]]
    source = volumes[mount["name"]]["secret"]
    (key,) = secret["stringData"]
    assert source["secretName"] == secret["metadata"]["name"]
    assert f"password_file={mount['mountPath']}/{key}" in env_of(EXEC)["HC_TARGET"]
    assert "subPath" not in mount  # a subPath is never updated: no rotation
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"] == 65534
    assert source["defaultMode"] & 0o040  # group-readable, the group being fsGroup


def test_the_probes_of_both_deployments_pass_against_hc_set_up_as_the_deployment_says(
        hc_serve: ServeFactory, redis_server: RedisFactory, tmp_path: Path) -> None:
    password = "pw-K8s-2b7c"  # noqa: S105
    server = redis_server(password=password)
    (tmp_path / "password").write_text(password + "\n")
    env = env_of(EXEC)
    port = free_port()
    env.update(HC_PORT=str(port), HC_STATE_DIR=str(tmp_path / "state"), HC_TARGET=(
        env["HC_TARGET"].replace("redis:6379", f"127.0.0.1:{server.port}")
        .replace("/run/secrets/hc", str(tmp_path))))
    service = hc_serve(env=env, address_flags=False, port=port, state_dir=tmp_path / "state")

    for probe in PROBES:
        command = container(EXEC)[probe]["exec"]["command"]
        result = run_hc(*command[1:], env=env)
        assert result.returncode == exits.OK, (shlex.join([*HC, *command[1:]]),
                                               result.stderr)
        assert service.get(container(HTTP_GET)[probe]["httpGet"]["path"]).status == 200
