"""Provider webhooks, parsed: signature checks and what each provider event becomes on the log.

Pure functions over the request's parts (body, URL, headers); ``api.webhooks`` serves them.
"""
