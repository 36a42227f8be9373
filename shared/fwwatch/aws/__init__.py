"""AWS adapters: DynamoDB state, token, news ledger and run table, SQS check and digest
queues, SNS publishing.

Only the Lambda handlers and tests import this package; the core never does.
"""
