"""The operator's imperative shell: kopf handlers, the cache, the work queue and the reconciler."""
