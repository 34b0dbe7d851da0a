// The Images guide (openai-node 3.x), "Variations", in the guide's own error handling.
const fs = require("fs");
const { Configuration, OpenAIApi } = require("openai");
const configuration = new Configuration({
  apiKey: process.env.OPENAI_API_KEY,
  basePath: process.env.OPENAI_BASE_URL,
});
const openai = new OpenAIApi(configuration);

async function main() {
  try {
    const response = await openai.createImageVariation(
      fs.createReadStream(process.env.IMAGE || "corgi_and_cat_paw.png"),
      1,
      "1024x1024"
    );
    image_url = response.data.data[0].url;
    console.log(JSON.stringify({ image_url, urls: response.data.data.map((image) => image.url), request_id: response.headers["x-request-id"] }));
  } catch (error) {
    if (error.response) {
      console.log(JSON.stringify({ status: error.response.status, data: error.response.data, request_id: error.response.headers["x-request-id"] }));
    } else {
      console.log(JSON.stringify({ message: error.message }));
    }
  }
}

main();
