"""deploy/kubernetes/ validated offline: every manifest against the Kubernetes schemas
(``kubernetes-validate``, pinned; no cluster, nothing fetched), and its ports, probes, names and
repositories checked against what the image and the repository builder produce."""

from __future__ import annotations

import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from ebjr.build import model_config as mc
from ebjr.core.layout import PROJECT_ROOT, ROUTER, TEACHER, config_path
from ebjr.ops import restricted, shm

DEPLOY = PROJECT_ROOT / "deploy"
MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))
KUBERNETES = "1.30.0"
HTTP, GRPC, METRICS = 8000, 8001, 8002


def documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


ALL = [(path.name, i, doc) for path in MANIFESTS for i, doc in enumerate(documents(path))]
BY_KIND: dict[str, dict[str, dict]] = {}
for _, _, doc in ALL:
    BY_KIND.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc


@pytest.mark.parametrize(("name", "index", "doc"), ALL, ids=[f"{n}#{i}" for n, i, _ in ALL])
def test_manifest_validates_against_the_kubernetes_schema(name, index, doc):
    kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def test_the_manifests_hold_every_required_object():
    deployments = set(BY_KIND["Deployment"])
    assert {"ebjr-cascade", "ebjr-teacher", "ebjr-teacher-gpu"} <= deployments
    for kind in ("Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
        assert set(BY_KIND[kind]) == deployments, kind


@pytest.mark.parametrize("name", ["ebjr-cascade", "ebjr-teacher", "ebjr-teacher-gpu"])
def test_each_pool_is_wired_together(name):
    deployment = BY_KIND["Deployment"][name]
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"] == labels
    assert BY_KIND["Service"][name]["spec"]["selector"] == labels
    assert BY_KIND["PodDisruptionBudget"][name]["spec"]["selector"]["matchLabels"] == labels
    hpa = BY_KIND["HorizontalPodAutoscaler"][name]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
    (container,) = pod["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": HTTP, "grpc": GRPC, "metrics": METRICS}
    args = " ".join(container["args"]).replace("=", " ")
    assert f"--http-port {HTTP}" in args and f"--grpc-port {GRPC}" in args
    assert f"--metrics-port {METRICS}" in args
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    assert set(container["resources"]["requests"]) >= {"cpu", "memory"}
    assert set(container["resources"]["limits"]) >= {"cpu", "memory"}
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(METRICS)
    service_ports = {p["name"]: p["port"] for p in BY_KIND["Service"][name]["spec"]["ports"]}
    assert service_ports == ports


def dockerfile_arg(name: str) -> str:
    text = (DEPLOY / "docker" / "Dockerfile").read_text()
    return re.search(rf"^ARG {name}=(\S+)$", text, re.MULTILINE).group(1)


def test_the_cascade_calls_the_teacher_service_the_image_was_built_for(tmp_path):
    """The image runs `make remote-repos REMOTE_TEACHER=<ARG>`: build that layout here and
    check the router calls the Teacher Service's gRPC port, for a model the Teacher pool
    serves, and that each pool's --model-repository is the one the layout writes."""
    from ebjr.tasks.classification.repository import main as build

    url = dockerfile_arg("REMOTE_TEACHER")
    host, port = url.split(":")
    assert host == "ebjr-teacher" and BY_KIND["Service"][host]["spec"]["clusterIP"] == "None"
    assert int(port) == GRPC
    cascade, teacher_repo = tmp_path / "cascade", tmp_path / "teacher"
    repo = PROJECT_ROOT / "model_repository"
    build(
        ["--student", str(repo / "student/1/model.onnx"), "--teacher"]
        + [str(repo / "teacher/1/model.onnx"), "--default-threshold", "4.0", "--score", "energy"]
        + ["--out", str(cascade), "--remote-teacher", url, "--teacher-out", str(teacher_repo)]
    )
    router = mc.parameters(mc.read(config_path(cascade, ROUTER)))
    assert router["teacher_url"] == url and router["teacher_model"] == TEACHER
    assert mc.read(config_path(teacher_repo, TEACHER)).name == TEACHER
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    assert (
        "--out build/remote/cascade" in makefile
        and "--teacher-out build/remote/teacher" in makefile
    )
    containers = {
        name: BY_KIND["Deployment"][name]["spec"]["template"]["spec"]["containers"][0]["args"]
        for name in ("ebjr-cascade", "ebjr-teacher")
    }
    assert containers["ebjr-cascade"][:2] == ["--model-repository", "build/remote/cascade"]
    assert containers["ebjr-teacher"][:2] == ["--model-repository", "build/remote/teacher"]
    # /dev/shm sized for what each pool serves (ebjr.ops.shm.pod_shm_mib)
    for name, served in (("ebjr-cascade", cascade), ("ebjr-teacher", teacher_repo)):
        pod = BY_KIND["Deployment"][name]["spec"]["template"]["spec"]
        dshm = {v["name"]: v for v in pod["volumes"]}["dshm"]["emptyDir"]
        assert dshm["sizeLimit"] == f"{shm.pod_shm_mib(served)}Mi", name


def test_the_gpu_teacher_pool_uses_gpus_and_the_gpu_image():
    pod = BY_KIND["Deployment"]["ebjr-teacher-gpu"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["image"].startswith("ebjr-teacher-gpu")
    dockerfile = (DEPLOY / "docker" / "Dockerfile").read_text()
    assert "FROM nvcr.io/nvidia/tritonserver:${TRITON_RELEASE}-py3 AS teacher-gpu" in dockerfile
    assert dockerfile_arg("REMOTE_TEACHER_GPU") == f"ebjr-teacher-gpu:{GRPC}"
    assert "--device gpu --tensorrt" in dockerfile


def test_the_teacher_autoscaler_metric_is_the_adapters():
    adapter = BY_KIND["ConfigMap"]["ebjr-prometheus-adapter-rules"]
    rules = yaml.safe_load(adapter["data"]["config.yaml"])["rules"]
    names = {rule["name"]["as"] for rule in rules}
    for name in ("ebjr-teacher", "ebjr-teacher-gpu"):
        metrics = BY_KIND["HorizontalPodAutoscaler"][name]["spec"]["metrics"]
        pods = [m["pods"]["metric"]["name"] for m in metrics if m["type"] == "Pods"]
        assert pods and set(pods) <= names


POOLS = ["ebjr-cascade", "ebjr-teacher", "ebjr-teacher-gpu"]


@pytest.mark.parametrize("name", POOLS)
def test_each_pool_runs_with_least_privilege(name):
    pod = BY_KIND["Deployment"][name]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] >= 10000
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    # the read-only root leaves these writable: /dev/shm sized in memory, /tmp
    assert volumes[mounts["/dev/shm"]]["emptyDir"]["medium"] == "Memory"
    assert volumes[mounts["/tmp"]]["emptyDir"]["sizeLimit"]
    for doc in ALL:
        assert doc[2]["metadata"].get("namespace", "ebjr") == "ebjr"
    assert (
        BY_KIND["Namespace"]["ebjr"]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
        == "restricted"
    )


def admin_token_source(container: dict) -> str:
    env = {e["name"]: e for e in container.get("env", [])}
    if "EBJR_ADMIN_TOKEN_FILE" in env:
        return "file"
    return env["EBJR_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"]["name"]


@pytest.mark.parametrize("name", POOLS)
def test_each_pool_restricts_its_admin_endpoints_with_the_secret(name):
    pod = BY_KIND["Deployment"][name]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    if admin_token_source(container) == "file":  # the launcher reads the mounted Secret
        env = {e["name"]: e["value"] for e in container["env"]}
        mounted = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        secret = {v["name"]: v for v in pod["volumes"]}["admin-token"]["secret"]
        assert secret["secretName"] == "ebjr-admin-token"
        assert env["EBJR_ADMIN_TOKEN_FILE"] == f"{mounted['admin-token']}/token"
        assert not any("--unrestricted" in a for a in container["args"])
    else:  # NVIDIA's tritonserver: the launcher's own flags, with the token expanded into them
        assert admin_token_source(container) == "ebjr-admin-token"
        expected = restricted.server_flags("$(EBJR_ADMIN_TOKEN)")
        assert [a for a in container["args"] if "restricted" in a] == expected


def allowed_sources(pool_labels: dict, port: str) -> list[dict]:
    """The ``from`` clauses of every NetworkPolicy that admits ``port`` of the pods with
    ``pool_labels`` ([{}] for "anyone")."""
    found = []
    for policy in BY_KIND["NetworkPolicy"].values():
        spec = policy["spec"]
        selector = spec["podSelector"]
        if not all(pool_labels.get(k) == v for k, v in selector.get("matchLabels", {}).items()):
            continue
        if not all(
            pool_labels.get(e["key"]) in e["values"] for e in selector.get("matchExpressions", [])
        ):
            continue
        for rule in spec.get("ingress", []):
            if any(p["port"] == port for p in rule["ports"]):
                found += rule.get("from", [{}])
    return found


@pytest.mark.parametrize("name", ["ebjr-teacher", "ebjr-teacher-gpu"])
def test_only_the_cascade_reaches_the_teacher_pools(name):
    labels = BY_KIND["Deployment"][name]["spec"]["template"]["metadata"]["labels"]
    cascade = BY_KIND["Deployment"]["ebjr-cascade"]["spec"]["template"]["metadata"]["labels"]
    for port in ("grpc", "http"):
        sources = allowed_sources(labels, port)
        assert sources == [{"podSelector": {"matchLabels": cascade}}], (port, sources)


@pytest.mark.parametrize("name", POOLS)
def test_only_prometheus_reaches_the_metrics_ports(name):
    labels = BY_KIND["Deployment"][name]["spec"]["template"]["metadata"]["labels"]
    sources = allowed_sources(labels, "metrics")
    assert sources == [
        {
            "namespaceSelector": {},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
        }
    ]


def test_the_images_run_a_patched_triton_as_an_unprivileged_user():
    """Both serving targets are NVIDIA's container at a release after the August 2025 fixes
    (25.07: CVE-2025-23310/23311/23319/23320/23334), run as UID 10001 (the manifests'
    runAsUser), and the launcher keeps its restricted endpoints on."""
    dockerfile = (DEPLOY / "docker" / "Dockerfile").read_text()
    year, month = map(
        int, re.search(r"^ARG TRITON_RELEASE=(\d+)\.(\d+)$", dockerfile, re.M).groups()
    )
    assert (year, month) >= (25, 7)
    stages = re.split(r"^FROM ", dockerfile, flags=re.M)[1:]
    serving = {s.split()[2]: s for s in stages if " AS " in s.split("\n")[0]}
    for target in ("teacher-gpu", "cpu"):
        assert serving[target].startswith("nvcr.io/nvidia/tritonserver:${TRITON_RELEASE}-py3")
        assert "USER 10001:10001" in serving[target]
    assert "EBJR_TRITONSERVER=/opt/tritonserver/bin/tritonserver" in serving["cpu"]
    entrypoints = re.findall(r"^(?:ENTRYPOINT|CMD) .*$", dockerfile, re.M)
    assert entrypoints and not any("--unrestricted" in line for line in entrypoints)
    for name in POOLS:
        pod = BY_KIND["Deployment"][name]["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsUser"] == 10001
