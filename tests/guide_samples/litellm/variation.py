# LiteLLM's image variation against an OpenAI-compatible server (api_base).
import json
import os

import litellm

try:
    response = litellm.image_variation(
        model="openai/dall-e-2",
        image=open(os.getenv("IMAGE", "corgi_and_cat_paw.png"), "rb"),
        n=1,
        size="1024x1024",
        api_base=os.environ["OPENAI_BASE_URL"],
        api_key=os.environ["OPENAI_API_KEY"],
    )
    print(json.dumps({"image_url": response.data[0].url, "urls": [image.url for image in response.data]}))
except Exception as e:  # LiteLLM's exceptions carry the status and the server's message
    print(json.dumps({"status_code": getattr(e, "status_code", None), "class": type(e).__name__, "message": str(e)}))
