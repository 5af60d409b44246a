"""The ways a function becomes a flow, the flow's name and version."""
import prefect
import prefect as pf
from prefect import flow, task
from prefect import flow as as_flow
from prefect.flows import flow as deep_flow

FLOW_NAME = "from-a-constant"


@flow
def plain_flow():
    pass


@flow()
def called_flow(x: int = 1):
    pass


@prefect.flow(name="Named by prefect.flow", retries=2)
def module_flow():
    pass


@pf.flow
async def async_flow(n: int = 1):
    pass


@as_flow(name="Aliased: spaces, punctuation!")
def aliased_flow():
    pass


@deep_flow(version="1.2.3")
def versioned_flow():
    pass


@flow(name=FLOW_NAME, version=None)
def constant_named_flow():
    pass


@flow(name="")
def empty_name_flow():
    pass


@task
def a_task():
    pass


def not_decorated():
    pass


def _decorate(fn):
    return fn


@_decorate
@flow(log_prints=True)
def stacked_flow(y: str = "y"):
    pass
