"""One service per data directory, and the admin token generated when none is configured."""

from __future__ import annotations

import stat
import subprocess

from tests.e2e.api import D, Api, assert_envelope, assert_error, unique_suffix
from tests.e2e.process import ServiceProcess

SECOND_INSTANCE_DEADLINE = 45.0


def test_second_instance_on_a_data_dir_in_use_exits_nonzero_with_a_clear_message(api, service, tmp_path):
    user = api.new_user(usd="10")
    second = ServiceProcess(service.data_dir, tmp_path / "second-logs", admin_token=service.admin_token)
    try:
        process = second.spawn()
        try:
            code = process.wait(timeout=SECOND_INSTANCE_DEADLINE)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"a second instance on {service.data_dir} still runs after "
                                 f"{SECOND_INSTANCE_DEADLINE}s:\n{second.stderr()[-3000:]}") from None
        assert code != 0
        message = second.stderr().lower()
        assert str(service.data_dir).lower() in message or "already" in message, second.stderr()[-3000:]
        assert "traceback" not in message, second.stderr()[-3000:]
    finally:
        second.cleanup()
    # The first instance serves on, unharmed.
    assert api.get("/health/ready").status_code == 200
    assert D(api.deposit(user, "USD", "5")["available"]) == 15


def test_admin_token_is_generated_into_the_data_dir_with_mode_0600_and_never_logged(service_factory):
    service = service_factory(admin_token=None)
    service.start()
    token_path = service.data_dir / "admin_token"
    assert token_path.is_file(), f"{token_path} was not written"
    assert stat.S_IMODE(token_path.stat().st_mode) == 0o600
    token = token_path.read_text().strip()
    assert len(token) >= 16
    api = Api(service.base_url, token)
    try:
        username = f"tok{unique_suffix()}"
        assert_envelope(api.admin_post("/api/v1/admin/users", {"username": username}), 201, True)
        wrong = api.http.post("/api/v1/admin/users", json={"username": f"x{username}"},
                              headers={"Authorization": "Bearer not-the-admin-token"})
        assert_error(wrong, 401)
    finally:
        api.close()
    logs = service.logs()
    assert token not in logs
    assert str(token_path) in logs or "admin_token" in logs, "the token's path is not logged"
