"""AWS adapters: DynamoDB state, token and news ledger, SQS check queue, SNS publishing.

Only the Lambda handlers and tests import this package; the core never does.
"""
