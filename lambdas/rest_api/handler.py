"""REST API Lambda: API Gateway REST (Cognito authorizer) -> Powertools resolver -> one use case per route."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig
from aws_lambda_powertools.utilities.typing import LambdaContext

from routes import chat, documents, errors, models, summaries, usage, workspaces
from routes.body import json_bodies_only, parse_json

logger = Logger(service="quarry-rest")
tracer = Tracer(service="quarry-rest")
metrics = Metrics(namespace="Quarry", service="rest")

# Retry-After is exposed so the UI (another origin in AWS) can read when to retry a 503 "database_waking".
# Bodies are JSON only and parsed with a nesting limit (routes/body.py): 415 / 400, never a 500.
app = APIGatewayRestResolver(
    enable_validation=True,
    cors=CORSConfig(allow_origin="*", max_age=600, expose_headers=["Retry-After"]),
    json_body_deserializer=parse_json,
)
app.use(middlewares=[json_bodies_only])
app.configure_openapi(title="Quarry API", version="1.0.0", description="Workspaces, documents, search and chat.")
for router in (workspaces.router, documents.router, models.router, chat.router, usage.router, summaries.router):
    app.include_router(router)
errors.install(app)


@app.get("/openapi.json", include_in_schema=False)
def openapi() -> dict[str, Any]:
    import json

    return json.loads(app.get_openapi_json_schema())


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
