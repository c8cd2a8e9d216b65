"""Server tails are timed with the host's threads, whatever a head profiled before them set."""




def test_server_tails_run_with_the_hosts_threads_whatever_ran_before():
    """A torch head profiled with one thread used to leave every later tail on one thread (issue 13.15)."""
    import torch

    from edgesplit.bench.spec import TimingSpec
    from edgesplit.bench.tail_timing import server_threads, time_tail
    from edgesplit.models import create_model
    from edgesplit.models.cuts import analyse

    model = create_model("classifier4", img_size=32, in_chans=1, num_classes=10).eval()
    cut = analyse(model, torch.zeros(1, 1, 32, 32)).resolve("features.1")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        quick = TimingSpec(warmup=1, iters=3, min_seconds=0.0)
        whole, tail = time_tail(model, None, (1, 32, 32), quick), time_tail(model, cut, (1, 32, 32), quick)
        assert whole["threads"] == tail["threads"] == server_threads() >= 1
        assert torch.get_num_threads() == 1, "the caller's setting is restored"
        assert whole["payload_bytes"] == 32 * 32 and "payload_bytes" not in tail
    finally:
        torch.set_num_threads(before)
