"""`python -m bench --tenant` works (at toy sizes; its figures are timings, so nothing here times anything)."""

from bench import tenant_speed


def test_tenant_speed_measurements_run_and_check_their_own_results() -> None:
    assert tenant_speed.export_users(300)["users"] == 300  # the export asserts it carried every user
    assert tenant_speed.import_file(20)["users"] == 20  # the import asserts every user inserted or updated
    searched = tenant_speed.calls_and_search(calls=3, users=1_000)
    assert set(searched["search_seconds"]) == {"email", "user_id", "email prefix", "whole connection",
                                               "name (JSON scan)"}
    assert searched["get_user_per_second"] > 0 and searched["users_by_email_per_second"] > 0
    assert tenant_speed.import_validation(50)["users"] == 50
